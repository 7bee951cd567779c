"""What fills the store from Kafka: the alert sink (:mod:`api.sink.alerts`) and its decoding
(:mod:`api.sink.decode`), the monitoring sink (:mod:`api.sink.monitoring`) and the MLflow writer of its windows
(:mod:`api.sink.mlflow_writer`), and the threads that run them in the API or on their own (:mod:`api.sink.thread`)."""
