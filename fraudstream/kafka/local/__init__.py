"""The local Apache Kafka: KRaft nodes run on the machine's Java from jars resolved once from Maven Central.

Development, tests and the demo use it where no cluster is named (FRAUD_KAFKA_BOOTSTRAP). The client side that
every component imports (connection options, client configurations, topic administration) lives one level up,
in :mod:`fraudstream.kafka`; nothing here is needed to talk to a real cluster.
"""
