"""The ACL users of a deployment: who may run what on which keys and channels.

Each role gets the commands its job needs, named one by one, never a broad
category minus exceptions: a category grows with every Redis release, a list
does not. One place for the rules, so users.acl, sentinel.conf and the checks
of the running servers (ACL LIST, ACL DRYRUN) read the same lists.

What a service may not have, and why:
- SCAN, KEYS, RANDOMKEY, DBSIZE, PUBSUB CHANNELS/NUMSUB/…, CLUSTER GETKEYSINSLOT:
  Redis does not filter them by key or channel pattern, so they list or count
  other services' names (acquisition keys embed API key ids).
- SELECT, MOVE, COPY (its DB option), SWAPDB: other databases are outside any
  key pattern.
- SORT/SORT_RO: BY and GET read keys named by patterns, not by arguments.
- FUNCTION and SCRIPT administration (FLUSH, DELETE, LOAD of a function, KILL):
  functions and the script cache are shared by every user, so one service could
  wipe or plant code that another runs with its own rights. SCRIPT LOAD and
  SCRIPT EXISTS stay: a script is addressed by the SHA1 of its own text, so
  loading one changes nothing another service runs (redis-py's Lock needs them).
- CLIENT LIST/KILL/NO-EVICT/PAUSE, MONITOR, SLOWLOG, CONFIG, DEBUG: other
  connections' commands and the server's settings.
INFO stays (ioredis waits for `loading:0` with it; it shows counts, no names).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_harness.profile.credentials import Secrets, sha256_hex
from redis_harness.profile.model import Profile, ServiceUser

# The hello channel Sentinels announce themselves and the primary on: whoever
# may publish there can make every Sentinel follow another "primary".
SENTINEL_HELLO = "__sentinel__:hello"

# --------------------------------------------------------------------------- service commands

_STRINGS = (
    "get set setnx setex psetex getset getdel getex mget mset msetnx append strlen getrange setrange substr "
    "incr incrby incrbyfloat decr decrby lcs"
)
_KEYS = (
    "del unlink exists type ttl pttl expire pexpire expireat pexpireat expiretime pexpiretime persist touch "
    "rename renamenx"
)
_HASHES = (
    "hget hset hsetnx hmset hmget hgetall hdel hexists hincrby hincrbyfloat hkeys hvals hlen hstrlen hscan hrandfield"
)
_LISTS = (
    "lpush rpush lpushx rpushx lpop rpop lrange llen lindex lset linsert lrem ltrim lpos lmove lmpop rpoplpush "
    "blpop brpop blmove blmpop brpoplpush"
)
_SETS = (
    "sadd srem smembers sismember smismember scard spop srandmember smove sinter sintercard sinterstore sunion "
    "sunionstore sdiff sdiffstore sscan"
)
_SORTED_SETS = (
    "zadd zrem zcard zcount zlexcount zscore zmscore zincrby zrank zrevrank zrange zrangestore zrangebyscore "
    "zrevrangebyscore zrangebylex zrevrangebylex zrevrange zremrangebyrank zremrangebyscore zremrangebylex "
    "zpopmin zpopmax bzpopmin bzpopmax zmpop bzmpop zrandmember zscan zunion zunionstore zinter zinterstore "
    "zintercard zdiff zdiffstore"
)
_BITS_HLL_GEO = (
    "setbit getbit bitcount bitpos bitop bitfield bitfield_ro pfadd pfcount pfmerge "
    "geoadd geodist geohash geopos geosearch geosearchstore"
)
_STREAMS = (
    "xadd xrange xrevrange xlen xdel xtrim xread xreadgroup xack xpending xclaim xautoclaim "
    "xgroup|create xgroup|createconsumer xgroup|delconsumer xgroup|destroy xgroup|setid "
    "xinfo|stream xinfo|groups xinfo|consumers"
)
_PUBSUB = "publish subscribe unsubscribe psubscribe punsubscribe spublish ssubscribe sunsubscribe"
_TRANSACTIONS = "multi exec discard watch unwatch"
# Scripts run with the caller's rights: every redis.call inside is checked against its key patterns.
_SCRIPTING = "eval evalsha eval_ro evalsha_ro fcall fcall_ro script|load script|exists"
# The connection itself and what clients ask about the server: ioredis's ready check (INFO),
# server time for rate limiters and locks (TIME, also inside Lua), names for CLIENT LIST.
_CONNECTION = (
    "auth hello ping echo quit reset wait info time command client|setname client|getname client|id client|info"
)
# Cluster clients learn the slot map and may read from replicas (READONLY).
_CLUSTER_CLIENT = (
    "cluster|slots cluster|shards cluster|nodes cluster|info cluster|myid cluster|keyslot readonly readwrite asking"
)

SERVICE_COMMANDS: tuple[str, ...] = tuple(
    " ".join(
        (_STRINGS, _KEYS, _HASHES, _LISTS, _SETS, _SORTED_SETS, _BITS_HLL_GEO, _STREAMS, _PUBSUB)
        + (_TRANSACTIONS, _SCRIPTING, _CONNECTION)
    ).split()
)
CLUSTER_CLIENT_COMMANDS: tuple[str, ...] = tuple(_CLUSTER_CLIENT.split())

# Commands a service must never have, named so the checks can try each one.
_DENIED = (
    "scan keys randomkey dbsize select move copy swapdb sort sort_ro flushall flushdb "
    "pubsub|channels pubsub|numsub pubsub|numpat pubsub|shardchannels pubsub|shardnumsub "
    "function|load function|delete function|flush function|restore function|kill function|list function|dump "
    "script|flush script|kill script|debug "
    "client|list client|kill client|no-evict client|pause client|tracking monitor slowlog|get config|get config|set "
    "acl|list acl|setuser debug shutdown replicaof slaveof cluster|getkeysinslot cluster|countkeysinslot"
)
SERVICE_DENIED: tuple[str, ...] = tuple(_DENIED.split())


def _allow(commands: tuple[str, ...] | list[str]) -> str:
    return " ".join(f"+{c}" for c in commands)


# --------------------------------------------------------------------------- internal roles

ADMIN_RULES = "~* resetchannels +@all"  # everything, but publishes nowhere: the hello channel is Sentinel's
HEALTHCHECK_RULES = "resetkeys resetchannels -@all +ping"
# What a replica needs on its primary (Redis's ACL docs).
REPLICATION_RULES = "resetkeys resetchannels -@all +psync +replconf +ping"
# What a Sentinel does on the data nodes (Redis's Sentinel docs): watch (INFO, ROLE, PING),
# announce itself on the hello channel and nowhere else, and reconfigure on failover.
SENTINEL_RULES = (
    f"resetkeys resetchannels &{SENTINEL_HELLO} -@all +ping +info +role +subscribe +publish "
    "+multi +exec +slaveof +replicaof +config|rewrite +client|setname +client|kill +script|kill"
)

# On the Sentinels themselves:
# clients (the `default` user, REDIS_PASSWORD) only ask where the primary and replicas are;
SENTINEL_CLIENT_RULES = (
    "resetkeys resetchannels -@all +ping +hello +client|setname +client|getname +client|id "
    "+sentinel|get-master-addr-by-name +sentinel|master +sentinel|masters +sentinel|replicas "
    "+sentinel|slaves +sentinel|sentinels +sentinel|myid"
)
# Sentinels talk to each other: PING, hello on the hello channel, votes on a failover, and a
# Sentinel starting asks its peers where the primary is now.
SENTINEL_PEER_USER = "sentinel-peer"
SENTINEL_PEER_RULES = (
    f"resetkeys resetchannels &{SENTINEL_HELLO} -@all +ping +hello +publish +client|setname "
    "+sentinel|is-master-down-by-addr +sentinel|get-master-addr-by-name"
)
SENTINEL_ADMIN_RULES = "resetkeys resetchannels +@all"
# A data node starting asks the Sentinels which node is the primary now: after a failover, a node
# restarted by its restart policy must rejoin as a replica of the current primary, not of the
# profile's first node (which may be a replica of it: a loop with no primary that Sentinel cannot
# fail over). Its own user, so a data node holds no password that votes or controls.
NODE_LOOKUP_USER = "node-lookup"
NODE_LOOKUP_RULES = "resetkeys resetchannels -@all +ping +sentinel|get-master-addr-by-name"
# What redis_exporter runs (monitoring.enabled): INFO and the slowlog, latency and config reads
# behind its metrics, naming its connection; no key, no channel.
EXPORTER_RULES = (
    "resetkeys resetchannels -@all +ping +info +config|get +slowlog|get +slowlog|len +latency|latest "
    "+latency|histogram +client|setname +cluster|info"
)


@dataclass(frozen=True)
class AclUser:
    name: str
    password_hashes: tuple[str, ...]  # more than one while a rotation keeps the previous password
    rules: str
    enabled: bool = True

    @property
    def line(self) -> str:
        state = "on" if self.enabled else "off"
        secret = "".join(f" #{h}" for h in self.password_hashes)
        return f"user {self.name} {state}{secret} {self.rules}"


def service_rules(service: ServiceUser, cluster: bool = False) -> str:
    """Keys and channels of the service's own prefix, the service commands and nothing else."""
    commands = SERVICE_COMMANDS + (CLUSTER_CLIENT_COMMANDS if cluster else ())
    pattern = service.key_pattern
    return f"resetkeys resetchannels ~{pattern} &{pattern} -@all {_allow(commands)}"


# `default` switched off: a password-only client is refused (AUTH fails), whatever it sends.
DEFAULT_OFF_RULES = "resetpass resetkeys resetchannels -@all"


def default_user(profile: Profile, secrets: Secrets) -> AclUser:
    """The password-only login: off, or exactly one service's rights (security.default_user)."""
    service = profile.security.default_service
    if service is None:
        return AclUser("default", (), DEFAULT_OFF_RULES, enabled=False)
    rules = service_rules(service, cluster=profile.topology.cluster is not None)
    return AclUser("default", secrets.default.acl_hashes, rules)


def acl_users(profile: Profile, secrets: Secrets) -> list[AclUser]:
    """The users of every data node (users.acl)."""
    users = [
        default_user(profile, secrets),
        AclUser("admin", (secrets.admin.acl_hash,), ADMIN_RULES),
        _internal("healthcheck", secrets, HEALTHCHECK_RULES),
    ]
    if profile.topology.has_replicas:
        users.append(_internal("replication", secrets, REPLICATION_RULES))
    if profile.topology.sentinel is not None:
        users.append(_internal("sentinel", secrets, SENTINEL_RULES))
    if profile.monitoring.enabled:
        users.append(_internal("exporter", secrets, EXPORTER_RULES))
    for service in profile.security.services:
        rules = service_rules(service, cluster=profile.topology.cluster is not None)
        users.append(AclUser(service.name, secrets.service(service.name).acl_hashes, rules))
    return users


def _internal(name: str, secrets: Secrets, rules: str) -> AclUser:
    """A user only the deployment itself logs in as, its password derived from admin's: one hash,
    the admin's rotation moves every link to the new one before the old is dropped."""
    return AclUser(name, (sha256_hex(secrets.derived(name)),), rules)


def sentinel_acl_users(secrets: Secrets) -> list[AclUser]:
    """The users of every Sentinel (sentinel.conf): admin to control, `default` to ask, peers to vote, data
    nodes to find the primary when they start."""
    return [
        AclUser("default", secrets.default.acl_hashes, SENTINEL_CLIENT_RULES),
        AclUser("admin", (secrets.admin.acl_hash,), SENTINEL_ADMIN_RULES),
        _internal(SENTINEL_PEER_USER, secrets, SENTINEL_PEER_RULES),
        _internal(NODE_LOOKUP_USER, secrets, NODE_LOOKUP_RULES),
        _internal("healthcheck", secrets, HEALTHCHECK_RULES),
    ]
