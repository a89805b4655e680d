"""The ACL users of a deployment: who may run what on which keys.

One place for the rules, so users.acl and the checks of the running server
(ACL LIST) read the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_harness.profile.credentials import Secrets, sha256_hex
from redis_harness.profile.model import Profile

# Clients that send only a password log in as `default`: full data access,
# no FLUSHALL/FLUSHDB/CONFIG/DEBUG/KEYS/SHUTDOWN/ACL/MONITOR (all in @dangerous).
DEFAULT_RULES = "~* &* +@all -@dangerous"
ADMIN_RULES = "~* &* +@all"
# A service works on its own prefix only, with data commands only.
SERVICE_COMMANDS = "-@all +@read +@write +@keyspace +@connection +@transaction +@scripting +@pubsub -@dangerous"
HEALTHCHECK_RULES = "resetkeys resetchannels -@all +ping"
# What a replica needs on its primary (Redis's ACL docs).
REPLICATION_RULES = "resetkeys resetchannels -@all +psync +replconf +ping"
# What a Sentinel needs on the data nodes (Redis's Sentinel docs).
SENTINEL_RULES = (
    "resetkeys allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info "
    "+client|setname +client|kill +script|kill"
)

# What redis_exporter runs (monitoring.enabled): INFO and the slowlog, latency and config reads
# behind its metrics, naming its connection; no key, no channel.
EXPORTER_RULES = (
    "resetkeys resetchannels -@all +ping +info +config|get +slowlog|get +slowlog|len +latency|latest "
    "+latency|histogram +client|setname +cluster|info"
)


@dataclass(frozen=True)
class AclUser:
    name: str
    password_hash: str
    rules: str

    @property
    def line(self) -> str:
        return f"user {self.name} on #{self.password_hash} {self.rules}"


# Cluster clients learn the slot map and may read from replicas.
CLUSTER_CLIENT_COMMANDS = "+cluster|slots +cluster|shards +cluster|nodes +cluster|info +readonly +readwrite +asking"


def service_rules(prefix_pattern: str, cluster: bool = False) -> str:
    rules = f"~{prefix_pattern} &{prefix_pattern} {SERVICE_COMMANDS}"
    return f"{rules} {CLUSTER_CLIENT_COMMANDS}" if cluster else rules


def acl_users(profile: Profile, secrets: Secrets) -> list[AclUser]:
    users = [
        AclUser("default", secrets.default.acl_hash, DEFAULT_RULES),
        AclUser("admin", secrets.admin.acl_hash, ADMIN_RULES),
        AclUser("healthcheck", secrets.healthcheck_hash, HEALTHCHECK_RULES),
    ]
    if profile.topology.has_replicas:
        users.append(AclUser("replication", sha256_hex(secrets.derived("replication")), REPLICATION_RULES))
    if profile.topology.sentinel is not None:
        users.append(AclUser("sentinel", sha256_hex(secrets.derived("sentinel")), SENTINEL_RULES))
    if profile.monitoring.enabled:
        users.append(AclUser("exporter", sha256_hex(secrets.derived("exporter")), EXPORTER_RULES))
    for service in profile.security.services:
        rules = service_rules(service.key_pattern, cluster=profile.topology.cluster is not None)
        users.append(AclUser(service.name, secrets.service(service.name).acl_hash, rules))
    return users
