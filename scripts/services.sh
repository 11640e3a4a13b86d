#!/usr/bin/env bash
# Start the PostgreSQL and Redis the integration tests use, when they are down.
# Tests read GODEL_TEST_REDIS_URL / GODEL_TEST_POSTGRES_URL; defaults are the local ones.
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up && command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
if ! redis_up && command -v redis-server >/dev/null; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 30); do redis_up && break; sleep 0.2; done
fi
pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: down (Postgres tests will be skipped only if GODEL_TEST_POSTGRES_URL=none)"
redis_up && echo "Redis: up" || echo "Redis: down (tests start an embedded one)"
