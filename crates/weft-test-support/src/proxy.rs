//! A fault-injecting TCP proxy for tests: [`Proxy::start`] listens on a
//! free loopback port and forwards every connection it accepts to one
//! target, while the test cuts the link ([`Proxy::cut`]: new connections
//! are closed at once and live ones severed), heals it ([`Proxy::heal`]),
//! closes a fraction of new connections ([`Proxy::drop_rate`], drawn from a
//! seeded generator so a run can be repeated) or delays every chunk of
//! bytes in both directions ([`Proxy::delay`]). Every control can change
//! while connections are open.
//!
//! **How the partition tests use it: one proxy per node, its inbound
//! link.** A node's `public_url` (in `weft.toml`, fixed into its actor ids
//! when they are created) is its proxy's address, `http://{proxy.addr()}`,
//! and the proxy forwards to the port the node listens on. Peers know the
//! node only by its actor ids, so every request a peer makes to the node
//! (deliveries to its inbox, fetches of its actor documents and outbox)
//! crosses the proxy, while the test itself talks to the node's own port
//! and is never cut off. Cutting node A's proxy partitions A from every
//! peer inbound; A's own requests out to others go through their proxies.
//!
//! A link is therefore one node's inbound side, not a pair of nodes: all
//! peers share a node's public URL and reach it from the same address, so
//! the proxy cannot tell them apart. Cutting A's proxy makes a one-way
//! partition (no one reaches A; A still reaches everyone whose link is
//! up); cutting A's and B's cuts both ways for both, from everyone.
//!
//! The proxy runs on a thread of its own with its own async runtime, so a
//! test that blocks its thread (running a CLI command, waiting for a
//! process) does not stall the traffic it forwards.
//!
//! Not an HTTP proxy (it never reads the bytes, so TLS passes through
//! unchanged), not a bandwidth shaper, and not for anything but
//! `127.0.0.1`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The seed of [`Proxy::start`]'s generator for [`Proxy::drop_rate`].
pub const DEFAULT_SEED: u64 = 0x5eed_fa11;

/// Bytes read from one side before they are passed on.
const CHUNK: usize = 16 * 1024;

/// The state of the link, which every connection watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    Cut,
    /// The proxy was dropped: stop everything.
    Closed,
}

/// The controls shared with the proxy's thread.
#[derive(Debug)]
struct Controls {
    link: watch::Sender<Link>,
    /// How many times the link was cut: a connection opened before a cut
    /// is severed by it even when the link is healed at once.
    cuts: AtomicU64,
    /// Fraction of new connections closed at once, and the generator that
    /// decides which.
    drop: Mutex<(f64, StdRng)>,
    delay: Mutex<Duration>,
    accepted: AtomicU64,
    refused: AtomicU64,
    forwarded: AtomicU64,
}

impl Controls {
    fn delay(&self) -> Duration {
        *self
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the next new connection is to be dropped.
    fn draw_drop(&self) -> bool {
        let mut drop = self
            .drop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (rate, rng) = &mut *drop;
        *rate > 0.0 && rng.gen_bool(*rate)
    }
}

/// A running proxy in front of one target; stopped (every connection
/// closed) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    controls: Arc<Controls>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target`, with the
    /// link up, no drops, no delay and [`DEFAULT_SEED`].
    pub fn start(target: SocketAddr) -> anyhow::Result<Self> {
        Self::start_seeded(target, DEFAULT_SEED)
    }

    /// [`Proxy::start`] with `seed` for the drop generator.
    pub fn start_seeded(target: SocketAddr, seed: u64) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (link, _) = watch::channel(Link::Up);
        let controls = Arc::new(Controls {
            link,
            cuts: AtomicU64::new(0),
            drop: Mutex::new((0.0, StdRng::seed_from_u64(seed))),
            delay: Mutex::new(Duration::ZERO),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build the proxy's runtime")?;
        let shared = controls.clone();
        std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, target, shared).await,
                        Err(e) => eprintln!("proxy {addr}: cannot listen: {e}"),
                    }
                });
                // Dropping the runtime cancels every connection's task,
                // which closes its sockets.
            })
            .context("cannot start the proxy's thread")?;
        Ok(Self {
            addr,
            target,
            controls,
        })
    }

    /// The address peers connect to (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the proxy as a node's `public_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Cuts the link: every connection open now is severed (even if the
    /// link is healed at once) and new ones are closed as soon as they are
    /// accepted, until [`Proxy::heal`].
    pub fn cut(&self) {
        self.controls.cuts.fetch_add(1, Ordering::SeqCst);
        self.controls.link.send_if_modified(|link| {
            let was = *link;
            if was == Link::Up {
                *link = Link::Cut;
            }
            was == Link::Up
        });
    }

    /// Restores a cut link: new connections are forwarded again.
    pub fn heal(&self) {
        self.controls.link.send_if_modified(|link| {
            let was = *link;
            if was == Link::Cut {
                *link = Link::Up;
            }
            was == Link::Cut
        });
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        *self.controls.link.borrow() != Link::Up
    }

    /// Closes this fraction of new connections at once (0.0 none, 1.0
    /// all; values outside are clamped, NaN is 0). Which ones is drawn from
    /// the proxy's seeded generator.
    pub fn drop_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.controls
            .drop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = rate;
    }

    /// Waits this long before passing on each chunk of bytes, in both
    /// directions (`Duration::ZERO` for none).
    pub fn delay(&self, delay: Duration) {
        *self
            .controls
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = delay;
    }

    /// Connections accepted so far (forwarded or not).
    pub fn accepted(&self) -> u64 {
        self.controls.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed at once: the link was cut, or a drop was drawn.
    pub fn refused(&self) -> u64 {
        self.controls.refused.load(Ordering::Relaxed)
    }

    /// Connections forwarded to the target.
    pub fn forwarded(&self) -> u64 {
        self.controls.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.controls.link.send_replace(Link::Closed);
    }
}

/// Accepts connections until the proxy is dropped.
async fn serve(listener: TcpListener, target: SocketAddr, controls: Arc<Controls>) {
    let mut link = controls.link.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = link.wait_for(|l| *l == Link::Closed) => return,
        };
        let Ok((client, _)) = accepted else {
            // A connection that failed before it was accepted, or no file
            // descriptor to spare: the listener goes on, without spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        controls.accepted.fetch_add(1, Ordering::Relaxed);
        if *link.borrow() != Link::Up || controls.draw_drop() {
            controls.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        controls.forwarded.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(client, target, controls.clone()));
    }
}

/// Forwards one connection both ways until either side closes or the link
/// is cut; then both sockets are closed.
async fn forward(client: TcpStream, target: SocketAddr, controls: Arc<Controls>) {
    let mut link = controls.link.subscribe();
    let cuts = controls.cuts.load(Ordering::SeqCst);
    let Ok(server) = TcpStream::connect(target).await else {
        // The target is down: the client sees its connection closed, as it
        // would see a refused one.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let both = async {
        tokio::join!(
            pump(client_read, server_write, &controls),
            pump(server_read, client_write, &controls),
        )
    };
    tokio::select! {
        _ = both => {}
        _ = link.wait_for(|l| *l != Link::Up || controls.cuts.load(Ordering::SeqCst) != cuts) => {}
    }
}

/// Copies one direction, each chunk after the delay in force; at the end
/// of the input, closes the output's write side (a half-close).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    controls: &Controls,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = controls.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// An echo server on a loopback port: every byte read is written back.
    async fn echo() -> anyhow::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        Ok(addr)
    }

    /// Sends `message` and reads as many bytes back (both at once, so a
    /// large message cannot fill the buffers), within 10 s.
    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (mut read, mut write) = stream.split();
        let mut back = vec![0u8; message.len()];
        let (sent, got) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(write.write_all(message), read.read_exact(&mut back))
        })
        .await
        .context("no echo within 10 s")?;
        sent?;
        got?;
        Ok(back)
    }

    /// Whether a new connection through `proxy` carries an echo: `false`
    /// when it is closed (EOF or reset) before the echo comes back.
    async fn echoes(proxy: &Proxy) -> anyhow::Result<bool> {
        let mut stream = TcpStream::connect(proxy.addr()).await?;
        Ok(matches!(round_trip(&mut stream, b"ping").await, Ok(back) if back == b"ping"))
    }

    /// Reads from `stream` until it is closed, within 10 s: EOF or reset.
    async fn closed(stream: &mut TcpStream) -> anyhow::Result<()> {
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .context("the connection stayed open")
    }

    #[tokio::test]
    async fn forwards_both_ways() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        let mut stream = TcpStream::connect(proxy.addr()).await?;
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(round_trip(&mut stream, &big).await?, big);
        assert_eq!(round_trip(&mut stream, b"again").await?, b"again");
        assert_eq!((proxy.accepted(), proxy.forwarded()), (1, 1));
        Ok(())
    }

    #[tokio::test]
    async fn cut_severs_live_connections_and_refuses_new_ones_until_healed() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        assert_eq!(round_trip(&mut live, b"before").await?, b"before");

        proxy.cut();
        assert!(proxy.is_cut());
        closed(&mut live).await?;
        for _ in 0..3 {
            assert!(
                !echoes(&proxy).await?,
                "a new connection crossed a cut link"
            );
        }
        assert_eq!(proxy.refused(), 3);

        proxy.heal();
        assert!(!proxy.is_cut());
        assert!(echoes(&proxy).await?, "the healed link carries nothing");
        Ok(())
    }

    #[tokio::test]
    async fn a_cut_healed_at_once_still_severs_what_was_open() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        assert_eq!(round_trip(&mut live, b"before").await?, b"before");
        proxy.cut();
        proxy.heal();
        closed(&mut live).await?;
        assert!(echoes(&proxy).await?, "the healed link carries nothing");
        Ok(())
    }

    #[tokio::test]
    async fn a_delay_holds_back_every_chunk() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        let mut stream = TcpStream::connect(proxy.addr()).await?;
        // Set while the connection is open: it applies to it at once.
        proxy.delay(Duration::from_millis(150));
        let started = Instant::now();
        assert_eq!(round_trip(&mut stream, b"slow").await?, b"slow");
        // Once on the way out and once on the way back: a lower bound only.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        proxy.delay(Duration::ZERO);
        assert_eq!(round_trip(&mut stream, b"fast").await?, b"fast");
        Ok(())
    }

    #[tokio::test]
    async fn drop_rate_one_drops_all_and_zero_none() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        proxy.drop_rate(1.0);
        for _ in 0..10 {
            assert!(
                !echoes(&proxy).await?,
                "a connection survived drop_rate(1.0)"
            );
        }
        assert_eq!(proxy.refused(), 10);
        proxy.drop_rate(0.0);
        for _ in 0..10 {
            assert!(
                echoes(&proxy).await?,
                "a connection was dropped at drop_rate(0.0)"
            );
        }
        assert_eq!((proxy.refused(), proxy.forwarded()), (10, 10));
        Ok(())
    }

    #[tokio::test]
    async fn a_drop_rate_between_is_repeatable_with_its_seed() -> anyhow::Result<()> {
        let target = echo().await?;
        let mut runs = Vec::new();
        for _ in 0..2 {
            let proxy = Proxy::start_seeded(target, 7)?;
            proxy.drop_rate(0.5);
            let mut outcome = Vec::new();
            for _ in 0..20 {
                outcome.push(echoes(&proxy).await?);
            }
            runs.push(outcome);
        }
        assert_eq!(
            runs[0], runs[1],
            "the same seed dropped different connections"
        );
        assert!(
            runs[0].contains(&true) && runs[0].contains(&false),
            "{:?}",
            runs[0]
        );
        Ok(())
    }

    /// What the partition suite counts on: at rate 0.5 the default seed's
    /// first draw drops, so any new connection after a cut meets a drop.
    #[tokio::test]
    async fn the_default_seed_drops_the_first_connection_at_one_half() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        proxy.drop_rate(0.5);
        assert!(!echoes(&proxy).await?, "the first connection was kept");
        Ok(())
    }

    #[tokio::test]
    async fn a_dropped_proxy_closes_its_connections() -> anyhow::Result<()> {
        let proxy = Proxy::start(echo().await?)?;
        let mut live = TcpStream::connect(proxy.addr()).await?;
        assert_eq!(round_trip(&mut live, b"hi").await?, b"hi");
        drop(proxy);
        closed(&mut live).await
    }
}
