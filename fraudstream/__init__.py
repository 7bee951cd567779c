"""fraudstream: streaming credit-card fraud scoring on Apache Kafka with an MLflow-governed model lifecycle.

This package is the shared kernel (settings, schemas, Kafka, data, model access, CLI). The components
``trainer``, ``producer``, ``scorer`` and ``api`` import it; it never imports them, except inside CLI commands.
"""

__version__ = "0.1.0"
