"""The API's alert store: the alerts (:mod:`api.store.alerts`, the repository the routes use), the analysts'
verdicts (:mod:`api.store.feedback`), the models' monitoring windows (:mod:`api.store.monitoring`), their SQL
tables (:mod:`api.store.sql`, SQLite or PostgreSQL) and the page cursors (:mod:`api.store.cursor`)."""
