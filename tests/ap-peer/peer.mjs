// A small ActivityPub test peer built on Fedify (https://fedify.dev), used by
// weft's end-to-end interop tests as "an ActivityPub implementation nobody on
// this project wrote".  Fedify does the protocol work: HTTP signatures
// (RFC 9421 and draft-cavage, with double-knocking), actor/key fetching,
// WebFinger, JSON-LD handling and delivery.  This file only wires an actor,
// inbox listeners, in-memory state and a small control API for the test.
//
// Environment:
//   PEER_LISTEN        port to listen on (127.0.0.1), required
//   PEER_ORIGIN        public base URL, e.g. http://127.0.0.1:PORT or
//                      https://localhost:PORT (default http://127.0.0.1:PORT)
//   PEER_TLS_CERT      PEM certificate file: serve HTTPS (with PEER_TLS_KEY)
//   PEER_TLS_KEY       PEM private key file
//   NODE_EXTRA_CA_CERTS  (read by Node itself) extra CA to trust outbound
//   PEER_FEDIFY_LOG    Fedify's own log level: debug|info|warning|error
//                      (default warning)
//   PEER_FIRST_KNOCK   rfc9421 (Fedify's default) or
//                      draft-cavage-http-signatures-12
//   PEER_QUEUE         unset (no queue: synchronous) or "inprocess"
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import crypto from "node:crypto";
import { Temporal } from "@js-temporal/polyfill";
import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getConsoleSink } from "@logtape/logtape";
import {
  createFederation,
  generateCryptoKeyPair,
  InProcessMessageQueue,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Create,
  Endpoints,
  Follow,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Undo,
} from "@fedify/vocab";

const USER = "peer";
const port = Number(process.env.PEER_LISTEN);
if (!Number.isInteger(port) || port <= 0) {
  console.error("peer: PEER_LISTEN must be a port number");
  process.exit(2);
}
const tlsCert = process.env.PEER_TLS_CERT;
const tlsKey = process.env.PEER_TLS_KEY;
if ((tlsCert == null) !== (tlsKey == null)) {
  console.error("peer: set both PEER_TLS_CERT and PEER_TLS_KEY, or neither");
  process.exit(2);
}
const scheme = tlsCert ? "https" : "http";
const ORIGIN = (process.env.PEER_ORIGIN ?? `${scheme}://127.0.0.1:${port}`)
  .replace(/\/+$/, "");
const originUrl = new URL(ORIGIN);

function log(...parts) {
  console.log(`[peer ${originUrl.host}]`, ...parts);
}

await configure({
  sinks: { console: getConsoleSink() },
  contextLocalStorage: new AsyncLocalStorage(),
  loggers: [
    {
      category: "fedify",
      sinks: ["console"],
      lowestLevel: process.env.PEER_FEDIFY_LOG ?? "warning",
    },
    { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
  ],
});

// ---------------------------------------------------------------- state ----
const followers = new Map(); // actor id -> { id, inboxId, sharedInbox, followId }
const following = new Map(); // actor id -> { followId, actorId }   (accepted)
const pendingFollows = new Map(); // follow id -> { id, target, inbox }
const received = []; // verified activities handed to a listener
const unverified = []; // activities Fedify rejected (signature failures)
const httpIn = []; // every POST to an inbox (headers + raw body + status)
const httpOut = []; // every outbound request Fedify made
const rawBodies = new Map(); // activity id -> raw JSON text of inbox POST
const objects = new Map(); // local object/activity id -> vocab object
const outbox = []; // local Create activities, newest first
const LOG_CAP = 500;
const push = (arr, x) => {
  arr.push(x);
  if (arr.length > LOG_CAP) arr.shift();
};

const newId = (kind) => new URL(`/${kind}/${crypto.randomUUID()}`, ORIGIN);

// ------------------------------------------------------------- federation --
const federation = createFederation({
  kv: new MemoryKvStore(),
  origin: ORIGIN,
  allowPrivateAddress: true, // tests only: loopback peers
  ...(process.env.PEER_FIRST_KNOCK
    ? { firstKnock: process.env.PEER_FIRST_KNOCK }
    : {}),
  // Default: no queue, so inbox listeners run before the inbox answers and
  // sendActivity delivers at once (a failed delivery fails the control call).
  // PEER_QUEUE=inprocess: Fedify's in-process queue, like a production server
  // (inbox answers 202 first, deliveries are retried with backoff).
  ...(process.env.PEER_QUEUE === "inprocess"
    ? { queue: new InProcessMessageQueue() }
    : {}),
});

// Fedify's generateCryptoKeyPair() makes 4096-bit RSA keys; the test wants
// RSA-2048 (what Mastodon and most servers use), so generate it directly.
const rsaKeys = await crypto.webcrypto.subtle.generateKey(
  {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  true,
  ["sign", "verify"],
);
const ed25519Keys = await generateCryptoKeyPair("Ed25519");

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== USER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify test peer",
      summary: "ActivityPub test peer (Fedify) for weft interop tests",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      following: ctx.getFollowingUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      manuallyApprovesFollowers: false,
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .mapHandle((_ctx, username) => username === USER ? USER : null)
  .setKeyPairsDispatcher((_ctx, identifier) =>
    identifier === USER ? [rsaKeys, ed25519Keys] : []
  );

federation
  .setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) => {
    if (identifier !== USER) return null;
    return {
      items: [...followers.values()].map((f) => ({
        id: new URL(f.id),
        inboxId: f.inboxId ? new URL(f.inboxId) : null,
        endpoints: f.sharedInbox ? { sharedInbox: new URL(f.sharedInbox) } : null,
      })),
    };
  })
  .setCounter((_ctx, identifier) => identifier === USER ? followers.size : null);

federation
  .setFollowingDispatcher("/users/{identifier}/following", (_ctx, identifier) => {
    if (identifier !== USER) return null;
    return { items: [...following.keys()].map((u) => new URL(u)) };
  })
  .setCounter((_ctx, identifier) => identifier === USER ? following.size : null);

federation
  .setOutboxDispatcher("/users/{identifier}/outbox", (_ctx, identifier) => {
    if (identifier !== USER) return null;
    return { items: outbox };
  })
  .setCounter((_ctx, identifier) => identifier === USER ? outbox.length : null);

// Serve the peer's own notes and activities so their ids dereference.
for (const [cls, kind] of [
  [Note, "notes"],
  [Create, "creates"],
  [Follow, "follows"],
  [Accept, "accepts"],
  [Undo, "undos"],
]) {
  federation.setObjectDispatcher(cls, `/${kind}/{id}`, (_ctx, values) => {
    const obj = objects.get(new URL(`/${kind}/${values.id}`, ORIGIN).href);
    return obj instanceof cls ? obj : null;
  });
}

async function record(activity, extra = {}) {
  const id = activity.id?.href ?? null;
  let raw = id ? rawBodies.get(id) : undefined;
  let rawJson = null;
  if (raw != null) {
    try {
      rawJson = JSON.parse(raw);
    } catch {
      rawJson = raw;
    }
  } else {
    rawJson = await activity.toJsonLd().catch(() => null);
  }
  const typeName = activity.constructor.name;
  const entry = {
    type: typeName,
    id,
    actor: activity.actorId?.href ?? null,
    objectId: activity.objectId?.href ?? null,
    objectType: null,
    content: null,
    receivedAt: new Date().toISOString(),
    ...extra,
    raw: rawJson,
  };
  push(received, entry);
  log(
    `RECV ${typeName} id=${id} actor=${entry.actor}` +
      (entry.objectType ? ` objectType=${entry.objectType}` : "") +
      (entry.objectId ? ` object=${entry.objectId}` : "") +
      (entry.note ? ` (${entry.note})` : ""),
  );
  return entry;
}

const isFollowOfPeer = (ctx, follow) => {
  const parsed = follow.objectId ? ctx.parseUri(follow.objectId) : null;
  return parsed?.type === "actor" && parsed.identifier === USER;
};

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    if (follow.id == null || follow.actorId == null) {
      await record(follow, { note: "ignored: Follow without id or actor" });
      return;
    }
    if (!isFollowOfPeer(ctx, follow)) {
      await record(follow, { objectType: "?", note: "ignored: not a Follow of the peer actor" });
      return;
    }
    const follower = await follow.getActor(ctx);
    if (follower == null || follower.id == null) {
      await record(follow, { note: "ignored: could not fetch follower actor" });
      return;
    }
    followers.set(follower.id.href, {
      id: follower.id.href,
      inboxId: follower.inboxId?.href ?? null,
      sharedInbox: follower.endpoints?.sharedInbox?.href ?? null,
      followId: follow.id.href,
    });
    await record(follow, { objectType: "Person" });
    const accept = new Accept({
      id: newId("accepts"),
      actor: ctx.getActorUri(USER),
      to: follower.id,
      // Embed a plain copy of the Follow (id, actor, object) as Mastodon does;
      // embedding `follow` itself would also embed the fetched actor and the
      // sender's proof.
      object: new Follow({
        id: follow.id,
        actor: follow.actorId,
        object: follow.objectId,
      }),
    });
    objects.set(accept.id.href, accept);
    log(`SEND Accept id=${accept.id.href} object=${follow.id.href} to=${follower.id.href}`);
    await ctx.sendActivity({ identifier: USER }, follower, accept);
  })
  .on(Accept, async (ctx, accept) => {
    const objectId = accept.objectId?.href;
    let pending = objectId ? pendingFollows.get(objectId) : undefined;
    let note;
    if (pending == null && accept.actorId != null) {
      // Tolerate an Accept whose object is not our Follow's id but that comes
      // from an actor we asked to follow; flagged in the state for the test.
      pending = [...pendingFollows.values()].find((p) =>
        p.target === accept.actorId.href
      );
      if (pending) note = "matched by actor, not by Follow id";
    }
    if (pending == null || accept.actorId?.href !== pending.target) {
      await record(accept, { objectType: "Follow", note: "ignored: no matching pending Follow" });
      return;
    }
    pendingFollows.delete(pending.id);
    following.set(pending.target, {
      actorId: pending.target,
      followId: pending.id,
      inbox: pending.inbox,
    });
    await record(accept, { objectType: "Follow", ...(note ? { note } : {}) });
  })
  .on(Undo, async (ctx, undo) => {
    let follow = null;
    try {
      follow = await undo.getObject(ctx);
    } catch (e) {
      log(`undo: could not resolve object ${undo.objectId?.href}: ${e}`);
    }
    const objectId = undo.objectId?.href;
    const actor = undo.actorId?.href;
    let removed = false;
    if (actor && followers.has(actor)) {
      const f = followers.get(actor);
      if (
        (follow instanceof Follow && isFollowOfPeer(ctx, follow)) ||
        (objectId && objectId === f.followId)
      ) {
        followers.delete(actor);
        removed = true;
      }
    }
    await record(undo, {
      objectType: follow?.constructor?.name ?? null,
      ...(removed ? {} : { note: "nothing undone" }),
    });
  })
  .on(Create, async (ctx, create) => {
    let object = null;
    try {
      object = await create.getObject(ctx);
    } catch (e) {
      log(`create: could not resolve object ${create.objectId?.href}: ${e}`);
    }
    await record(create, {
      objectType: object?.constructor?.name ?? null,
      content: object?.content?.toString() ?? null,
      attributedTo: object?.attributionId?.href ?? null,
    });
  })
  .on(Activity, async (_ctx, activity) => {
    await record(activity);
  })
  .onUnverifiedActivity((_ctx, activity, reason) => {
    const entry = {
      type: activity.constructor.name,
      id: activity.id?.href ?? null,
      actor: activity.actorId?.href ?? null,
      reason: JSON.parse(JSON.stringify(reason, (_k, v) =>
        v instanceof URL ? v.href : v instanceof Error ? String(v) : v
      )),
      at: new Date().toISOString(),
    };
    push(unverified, entry);
    log(
      `UNVERIFIED ${entry.type} id=${entry.id} actor=${entry.actor} reason=${
        JSON.stringify(entry.reason)
      }`,
    );
  })
  .onError((_ctx, error) => {
    log(`inbox listener error: ${error?.stack ?? error}`);
  });

// --------------------------------------------- outbound request logging ----
const origFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const req = input instanceof Request ? input : new Request(input, init);
  let body = null;
  if (req.method !== "GET" && req.method !== "HEAD") {
    body = await req.clone().text().catch(() => null);
  }
  const started = Date.now();
  let res;
  try {
    res = await origFetch(input, init);
  } catch (e) {
    push(httpOut, {
      method: req.method, url: req.url, headers: Object.fromEntries(req.headers),
      body, error: String(e?.cause ?? e),
    });
    log(`HTTP-OUT ${req.method} ${req.url} -> error ${e?.cause ?? e}`);
    throw e;
  }
  const sig = req.headers.has("signature-input")
    ? "rfc9421"
    : req.headers.has("signature") ? "cavage" : "unsigned";
  push(httpOut, {
    method: req.method,
    url: req.url,
    headers: Object.fromEntries(req.headers),
    body,
    status: res.status,
    ms: Date.now() - started,
  });
  let what = "";
  if (body) {
    try {
      const j = JSON.parse(body);
      what = ` ${j.type} ${j.id}`;
    } catch { /* not JSON */ }
  }
  log(`HTTP-OUT ${req.method} ${req.url} sig=${sig}${what} -> ${res.status}`);
  return res;
};

// ------------------------------------------------------------ control API --
function json(res, status, value) {
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

async function resolveActor(ctx, target) {
  let actor = await ctx.lookupObject(target);
  if (actor == null && /^acct:|^@?[^/@]+@[^/]+$/.test(target) && scheme === "http") {
    // Fedify's WebFinger client always uses https://; in plain-http test
    // setups fall back to an http:// WebFinger lookup done here.
    const acct = target.replace(/^acct:/, "").replace(/^@/, "");
    const host = acct.slice(acct.lastIndexOf("@") + 1);
    const wf = new URL(`http://${host}/.well-known/webfinger`);
    wf.searchParams.set("resource", `acct:${acct}`);
    const r = await fetch(wf, { headers: { accept: "application/jrd+json" } });
    if (r.ok) {
      const jrd = await r.json();
      const self = jrd.links?.find((l) =>
        l.rel === "self" &&
        /activity\+json|ld\+json/.test(l.type ?? "")
      );
      if (self?.href) actor = await ctx.lookupObject(self.href);
    }
  }
  if (actor == null || actor.id == null || actor.inboxId == null) return null;
  return actor;
}

async function control(req, res, url, body) {
  const ctx = federation.createContext(new URL(ORIGIN), undefined);
  const path = url.pathname.replace(/^\/_control/, "");
  let input = {};
  if (req.method === "POST" && body.length > 0) {
    try {
      input = JSON.parse(body.toString("utf8"));
    } catch {
      return json(res, 400, { error: "body is not JSON" });
    }
  }
  if (req.method === "GET" && path === "/state") {
    return json(res, 200, {
      actor: ctx.getActorUri(USER).href,
      handle: `acct:${USER}@${originUrl.host}`,
      followers: [...followers.keys()],
      following: [...following.keys()],
      pendingFollows: [...pendingFollows.values()],
      received: received.map(({ raw, ...rest }) =>
        url.searchParams.get("raw") === "0" ? rest : { ...rest, raw }
      ),
      unverified,
    });
  }
  if (req.method === "GET" && path === "/http") {
    return json(res, 200, { inbound: httpIn, outbound: httpOut });
  }
  if (req.method === "POST" && path === "/follow") {
    if (typeof input.target !== "string") {
      return json(res, 400, { error: "target (actor URL or acct:) required" });
    }
    const actor = await resolveActor(ctx, input.target);
    if (actor == null) {
      return json(res, 502, { error: `could not resolve actor ${input.target}` });
    }
    const follow = new Follow({
      id: newId("follows"),
      actor: ctx.getActorUri(USER),
      object: actor.id,
      to: actor.id,
    });
    objects.set(follow.id.href, follow);
    pendingFollows.set(follow.id.href, {
      id: follow.id.href,
      target: actor.id.href,
      inbox: actor.inboxId.href,
    });
    log(`SEND Follow id=${follow.id.href} object=${actor.id.href}`);
    await ctx.sendActivity({ identifier: USER }, actor, follow);
    return json(res, 200, { id: follow.id.href, target: actor.id.href });
  }
  if (req.method === "POST" && path === "/unfollow") {
    if (typeof input.target !== "string") {
      return json(res, 400, { error: "target required" });
    }
    const actor = await resolveActor(ctx, input.target);
    if (actor == null) {
      return json(res, 502, { error: `could not resolve actor ${input.target}` });
    }
    const entry = following.get(actor.id.href) ??
      [...pendingFollows.values()].find((p) => p.target === actor.id.href);
    const followId = entry?.followId ?? entry?.id;
    if (followId == null) {
      return json(res, 409, { error: `not following ${actor.id.href}` });
    }
    const undo = new Undo({
      id: newId("undos"),
      actor: ctx.getActorUri(USER),
      to: actor.id,
      object: objects.get(followId) ?? new URL(followId),
    });
    objects.set(undo.id.href, undo);
    log(`SEND Undo id=${undo.id.href} object=${followId}`);
    await ctx.sendActivity({ identifier: USER }, actor, undo);
    following.delete(actor.id.href);
    pendingFollows.delete(followId);
    return json(res, 200, { id: undo.id.href, target: actor.id.href });
  }
  if (req.method === "POST" && path === "/note") {
    if (typeof input.content !== "string") {
      return json(res, 400, { error: "content (HTML string) required" });
    }
    if ((input.to ?? "public") !== "public") {
      return json(res, 400, { error: 'only "to": "public" is supported' });
    }
    const published = Temporal.Instant.from(new Date().toISOString());
    const note = new Note({
      id: newId("notes"),
      attribution: ctx.getActorUri(USER),
      to: PUBLIC_COLLECTION,
      cc: ctx.getFollowersUri(USER),
      content: input.content,
      published,
      url: undefined,
    });
    const create = new Create({
      id: newId("creates"),
      actor: ctx.getActorUri(USER),
      to: PUBLIC_COLLECTION,
      cc: ctx.getFollowersUri(USER),
      object: note,
      published,
    });
    objects.set(note.id.href, note);
    objects.set(create.id.href, create);
    outbox.unshift(create);
    log(`SEND Create id=${create.id.href} note=${note.id.href} to=followers(${followers.size})`);
    await ctx.sendActivity({ identifier: USER }, "followers", create, {
      preferSharedInbox: true,
    });
    return json(res, 200, { id: note.id.href, activity: create.id.href });
  }
  return json(res, 404, { error: `no control route ${req.method} ${path}` });
}

// ---------------------------------------------------------- HTTP server ----
const isLoopback = (addr) =>
  addr === "::1" || addr?.startsWith("127.") || addr?.startsWith("::ffff:127.");

async function handle(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const url = new URL(req.url, `${scheme}://${req.headers.host ?? `127.0.0.1:${port}`}`);

  if (url.pathname.startsWith("/_control/")) {
    if (!isLoopback(req.socket.remoteAddress)) {
      return json(res, 403, { error: "control API is localhost only" });
    }
    try {
      return await control(req, res, url, body);
    } catch (e) {
      log(`control ${req.method} ${url.pathname} failed: ${e?.stack ?? e}`);
      return json(res, 502, { error: String(e?.message ?? e) });
    }
  }

  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
    else if (v != null) headers.set(k, v);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? body : undefined,
  });

  const isInboxPost = req.method === "POST" &&
    (url.pathname === "/inbox" || url.pathname === `/users/${USER}/inbox`);
  let activityLine = "";
  if (isInboxPost) {
    const text = body.toString("utf8");
    try {
      const j = JSON.parse(text);
      if (typeof j.id === "string") rawBodies.set(j.id, text);
      activityLine = ` ${j.type} ${j.id} actor=${
        typeof j.actor === "string" ? j.actor : j.actor?.id
      }`;
    } catch { /* Fedify will answer 400 */ }
  }

  let response;
  try {
    response = await federation.fetch(request, {
      contextData: undefined,
      onNotFound: () => new Response("Not found\n", { status: 404 }),
      onNotAcceptable: () =>
        new Response("Not acceptable\n", {
          status: 406,
          headers: { vary: "Accept" },
        }),
    });
  } catch (e) {
    log(`federation.fetch ${req.method} ${url.pathname} threw: ${e?.stack ?? e}`);
    response = new Response("Internal error\n", { status: 500 });
  }
  const resBody = Buffer.from(await response.arrayBuffer());

  const sig = headers.has("signature-input")
    ? "rfc9421"
    : headers.has("signature") ? "cavage" : "unsigned";
  if (isInboxPost) {
    push(httpIn, {
      method: req.method,
      path: url.pathname,
      headers: Object.fromEntries(headers),
      body: body.toString("utf8"),
      status: response.status,
      response: resBody.toString("utf8").slice(0, 2000),
    });
  }
  if (isInboxPost || url.pathname.startsWith(`/users/`) || url.pathname.startsWith("/.well-known/")) {
    log(
      `HTTP-IN ${req.method} ${url.pathname}${url.search} sig=${sig} accept=${
        headers.get("accept") ?? "-"
      }${activityLine} -> ${response.status}`,
    );
  }

  const outHeaders = {};
  response.headers.forEach((v, k) => {
    outHeaders[k] = v;
  });
  outHeaders["content-length"] = String(resBody.length);
  res.writeHead(response.status, outHeaders);
  res.end(req.method === "HEAD" ? undefined : resBody);
}

const onRequest = (req, res) => {
  handle(req, res).catch((e) => {
    log(`request failed: ${e?.stack ?? e}`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
};
const server = tlsCert
  ? https.createServer(
    { cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey) },
    onRequest,
  )
  : http.createServer(onRequest);

server.listen(port, "127.0.0.1", () => {
  log(
    `listening on ${scheme}://127.0.0.1:${port} origin=${ORIGIN} actor=${ORIGIN}/users/${USER} handle=acct:${USER}@${originUrl.host}`,
  );
});

const shutdown = () => {
  log("shutting down");
  server.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
