"""Typed Kafka connection options; ``as_dict()`` yields librdkafka keys. Secrets stay SecretStr until then."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

_SECRET_HINTS = ("password", "secret", "key.pem", "token")


class KafkaConnection(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    extra: dict[str, str] = Field(default_factory=dict, repr=False)  # may hold secrets (ssl.key.password)

    def as_dict(self) -> dict[str, Any]:
        """librdkafka configuration (with secrets in clear: hand it to a client, never to a logger)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        config.update(self.extra)
        return config

    def describe(self) -> dict[str, Any]:
        """The same options with every secret-looking value masked, for logs and status lines."""
        return {
            key: "**********" if any(hint in key for hint in _SECRET_HINTS) else value
            for key, value in self.as_dict().items()
        }
