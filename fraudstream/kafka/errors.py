"""What a Kafka error means for the service that got it.

librdkafka reports everything as a :class:`~confluent_kafka.KafkaError`, wrapped in a ``KafkaException`` by the
blocking calls. The services need only four answers, and ask them here, so every component reads errors alike:

* :func:`refuses_record`: the broker (or the local client) refused *this record* (too large, invalid): the rest
  of the stream is fine, so the record is set aside (the scorer writes a smaller dead letter in its place);
* :func:`means_unreachable`: the cluster, or the broker a request needed, did not answer: wait and try again;
* :func:`producer_unusable`: the (transactional) producer can never work again (fatal, fenced, or a state
  librdkafka will not leave): build a new one with the same ``transactional.id``. A consumer is replaced only on
  a ``fatal()`` error (e.g. ``FENCED_INSTANCE_ID``: another member uses its ``group.instance.id``);
* anything else is retried or aborted as librdkafka's own flags (``retriable``, ``txn_requires_abort``) say.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

RECORD_REFUSALS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # also raised locally by produce() over message.max.bytes
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,  # e.g. a compacted topic and a record without a key
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.POLICY_VIOLATION,
        KafkaError._INVALID_ARG,  # produce() refused an argument (e.g. a header)
    }
)
"""Codes that concern one record only."""

UNREACHABLE = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)
"""Codes that say the cluster (or the broker a request needed) did not answer in time."""

UNUSABLE = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError.TRANSACTION_COORDINATOR_FENCED,
        # After a broker outage librdkafka 2.16 can be left answering every abort_transaction() with
        # INVALID_TXN_STATE (measured: a broker down ~20 s); only a new producer with the same transactional.id
        # gets out of it (init_transactions bumps the epoch and aborts what was left open).
        KafkaError.INVALID_TXN_STATE,
        KafkaError._STATE,
        KafkaError._CONFLICT,  # another transactional call of this producer is still running (a stuck one)
        KafkaError._DESTROY,
    }
)
"""Codes after which a transactional producer cannot be trusted again."""


MISCONFIGURED = frozenset(
    {
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
        KafkaError.INVALID_TRANSACTION_TIMEOUT,
        KafkaError.INVALID_CONFIG,
        KafkaError._INVALID_ARG,
        KafkaError._NOT_CONFIGURED,
        KafkaError._UNSUPPORTED_FEATURE,
    }
)
"""Codes no retry and no new client fixes: a setting (or an ACL) must change."""


def kafka_error(exc: BaseException) -> KafkaError:
    """The KafkaError inside a KafkaException (librdkafka always puts one there; be safe anyway)."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return error if isinstance(error, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))


def describe(error: KafkaError | BaseException | object) -> str:
    """``NAME: text`` of an error, for one log line or one header value."""
    if isinstance(error, BaseException):
        error = kafka_error(error) if isinstance(error, KafkaException) else error
    if isinstance(error, KafkaError):
        return f"{error.name()}: {error.str()}"
    return str(error)


def refuses_record(error: KafkaError) -> bool:
    """True when Kafka refused one record for what it is (the same record would be refused again)."""
    return error.code() in RECORD_REFUSALS


def means_unreachable(error: KafkaError) -> bool:
    """True when the error says a broker did not answer (an outage, a restart, a leader moving)."""
    return error.code() in UNREACHABLE


def misconfigured(error: KafkaError) -> bool:
    """True when only a change of configuration (or of the cluster's ACLs) can fix ``error``."""
    return error.code() in MISCONFIGURED


def producer_unusable(error: KafkaError) -> bool:
    """True when the transactional producer that reported ``error`` must be replaced by a new one."""
    return error.fatal() or error.code() in UNUSABLE
