//! What each `weft.toml` key means, for the commented file `weft init`
//! writes and `weft config show` prints: one line per key, by its path
//! (`runtime.fuel_per_call`). A test checks that every key the
//! configuration has is here, so a new key cannot go undocumented.

/// (key path, meaning) of every key, in the file's order.
pub const KEYS: &[(&str, &str)] = &[
    ("listen", "address the HTTP server binds"),
    (
        "public_url",
        "base URL peers use to reach this node; actor ids start with it and keep it, so choose it before creating actors (default: http://{listen}, https:// with tls_cert)",
    ),
    ("service_actor", "name of the node's own Service actor"),
    (
        "max_body_bytes",
        "largest request body accepted, in bytes (413 above)",
    ),
    (
        "max_batch",
        "most activities group-committed in one durable write",
    ),
    (
        "cache_mb",
        "the store's page cache, in MiB (default: a 512th of the machine's memory, 16 to 32)",
    ),
    (
        "quick_repair",
        "every commit saves the store's allocator state, so a killed node reopens at once; false: cheaper commits (21-31% more inbox activities per second measured), and a node killed mid-write walks its whole store file when it opens (7.5 s per million activities measured)",
    ),
    ("page_size", "activities per outbox page"),
    (
        "module_cache",
        "where compiled modules are cached (default: modules/ in the data folder); safe to share between nodes",
    ),
    (
        "tls_cert",
        "serve HTTPS directly with this certificate chain (PEM); with tls_key, or neither",
    ),
    (
        "tls_key",
        "the private key of tls_cert (PEM: PKCS#8, PKCS#1 or SEC1)",
    ),
    (
        "runtime.fuel_per_call",
        "fuel (about WebAssembly instructions) per module call; running out rejects the activity",
    ),
    (
        "runtime.deadline_ms",
        "wall-clock backstop per module call, in ms; hitting it is a transient failure (503)",
    ),
    (
        "runtime.memory_bytes",
        "linear memory per call, across all of a component's memories",
    ),
    ("runtime.table_elements", "elements of any one table"),
    (
        "runtime.max_stack_bytes",
        "WebAssembly stack of a call; deeper recursion traps",
    ),
    (
        "runtime.max_artifact_bytes",
        "largest component POST /artifacts accepts",
    ),
    (
        "runtime.max_function_bytes",
        "largest function body an artifact may hold",
    ),
    (
        "runtime.max_functions",
        "most functions an artifact may hold",
    ),
    (
        "runtime.compile_timeout_ms",
        "longest compile of one artifact, in ms",
    ),
    ("runtime.max_write_bytes", "most bytes one fold may write"),
    (
        "runtime.build_step",
        "activities folded per step when a projection is built or rebuilt (one a projection is not passed, by its `folds`, counts a sixteenth); the writer takes one step between batches",
    ),
    (
        "runtime.workers",
        "threads running validate and query calls (0: one per core)",
    ),
    (
        "runtime.worker_queue",
        "calls that may wait for a worker; past that, 503",
    ),
    (
        "runtime.max_reactions",
        "most local recipients whose verbs react to one activity",
    ),
    (
        "federation.retry",
        "waits between delivery attempts (human durations); after the last, the job is a dead letter",
    ),
    (
        "federation.jitter_percent",
        "each wait is stretched by up to this much, at random",
    ),
    (
        "federation.per_peer_in_flight",
        "deliveries in flight to one peer origin",
    ),
    (
        "federation.connect_timeout_ms",
        "bound of every outbound connection, in ms",
    ),
    (
        "federation.request_timeout_ms",
        "bound of every outbound request, in ms",
    ),
    (
        "federation.max_fetch_bytes",
        "largest document or page read from a peer",
    ),
    (
        "federation.fetches_per_request",
        "most fetches one inbound request may cause",
    ),
    (
        "federation.max_retry_after_s",
        "longest Retry-After honoured, in seconds",
    ),
    (
        "federation.module_policy",
        "which peers' verbs are admitted when met: followed, manual or allow",
    ),
    (
        "federation.module_allow",
        "artifact ids and definer actor URLs admitted under any policy",
    ),
    (
        "federation.max_parked",
        "most activities kept waiting for a verb this node does not know",
    ),
    (
        "federation.max_parked_per_origin",
        "most of those from authors at one origin",
    ),
    (
        "federation.peer_refresh",
        "age past which a peer actor's kept document is fetched again on next use",
    ),
    (
        "federation.allow_private_addresses",
        "let outbound connections reach loopback, private and link-local addresses (never on a public node)",
    ),
    (
        "federation.ca_file",
        "extra trusted certificate authorities (PEM) for outbound HTTPS",
    ),
    (
        "federation.signature_max_age",
        "how old an inbound request's HTTP signature may be",
    ),
    (
        "federation.signature_max_ahead",
        "how far ahead of this node's clock an inbound HTTP signature may be",
    ),
    (
        "federation.published_max_ahead",
        "how far ahead of this node's clock an inbound activity's published may be",
    ),
    (
        "federation.max_activities_per_origin",
        "most activities the actors of one peer origin may store here (507 past it)",
    ),
    (
        "federation.max_bytes_per_origin",
        "most bytes of JSON text the actors of one peer origin may store here",
    ),
    (
        "federation.max_forks_per_position",
        "fork evidence kept at one position of an actor's log",
    ),
    (
        "federation.max_forks_per_origin",
        "fork evidence kept against one origin's actors",
    ),
    (
        "federation.sync_interval",
        "how often the reconcile loop compares followed actors' heads with what this node holds",
    ),
    (
        "federation.sync_max_range",
        "most activities one sync range stages and commits in one transaction",
    ),
    (
        "federation.sync_pages_per_round",
        "most outbox pages one sync round reads",
    ),
    (
        "federation.sync_bytes_per_round",
        "most bytes of JSON text one sync round stages",
    ),
    (
        "federation.sync_stage_memory_bytes",
        "a sync range larger than this is staged on disk (staging/ in the data folder)",
    ),
    (
        "federation.sync_rounds_per_hour",
        "most sync rounds that fetch from one remote actor per hour",
    ),
    (
        "federation.sync_heal_checks_per_pass",
        "most dead letters one pass asks their recipients' nodes about",
    ),
    (
        "federation.sync_frame_bytes",
        "largest negentropy message of set reconciliation, in bytes",
    ),
    (
        "federation.sync_set_messages",
        "most negentropy messages one set-reconciliation round with an origin sends",
    ),
    (
        "server.header_timeout_ms",
        "longest a client may take to send a request's headers, or idle on a kept-alive connection, in ms",
    ),
    (
        "server.request_timeout_ms",
        "longest one request may take, body included, in ms (408 past it); /admin calls are exempt",
    ),
    (
        "server.max_connections",
        "connections open at once; past it new ones wait",
    ),
    (
        "server.max_concurrent_requests",
        "requests in progress at once; past it 503",
    ),
    (
        "server.rate_limit.per_ip_per_second",
        "requests per second one client IP may make (0: no limit)",
    ),
    (
        "server.rate_limit.per_ip_burst",
        "requests one client IP may make at once",
    ),
    (
        "server.rate_limit.per_origin_per_second",
        "inbox POSTs per second from one peer origin (0: no limit)",
    ),
    (
        "server.rate_limit.per_origin_burst",
        "inbox POSTs one peer origin may make at once",
    ),
    (
        "server.rate_limit.limit_loopback",
        "limit loopback clients per IP too",
    ),
];

/// The meaning of key `path`.
pub fn meaning(path: &str) -> Option<&'static str> {
    KEYS.iter().find(|(k, _)| *k == path).map(|(_, m)| *m)
}

/// An example value of a key that has none by default (shown commented out).
pub fn example(path: &str) -> &'static str {
    match path {
        "public_url" => "\"https://weft.example.org\"",
        "cache_mb" => "32",
        "module_cache" => "\"/var/cache/weft/modules\"",
        "tls_cert" => "\"/etc/weft/cert.pem\"",
        "tls_key" => "\"/etc/weft/key.pem\"",
        "federation.ca_file" => "\"/etc/weft/ca.pem\"",
        _ => "…",
    }
}
