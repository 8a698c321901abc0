//! Real servers on loopback for integration tests (nginx, redis-server, PostgreSQL).
