//! The runtime seam: executors, tasks, timers and TCP, on glommio. The only place in the
//! broker that names glommio (DESIGN §1), so replacing it stays local.

pub mod mesh;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use glommio::net::TcpStream as Stream;

/// Registered I/O memory per shard executor. Locked memory is scarce (`ulimit -l` is 8 MiB
/// on the development machines), so keep it small; DMA buffers beyond it come from aligned
/// heap memory.
pub const IO_MEMORY_BYTES: usize = 2 << 20;

/// Pending connections the kernel queues per listening socket.
const LISTEN_BACKLOG: i32 = 1024;

/// Runs a shard: a glommio executor on its own thread, running `make()`'s future to
/// completion. `cpu`, when given, pins the executor to that CPU.
pub fn run_shard<T, F, Fut>(name: &str, cpu: Option<usize>, make: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    start_shard(name, cpu, make)?.join()
}

/// A shard started by [`start_shard`], running on its own thread.
pub struct Shard<T: Send + 'static> {
    handle: glommio::ExecutorJoinHandle<T>,
}

impl<T: Send + 'static> std::fmt::Debug for Shard<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shard")
    }
}

impl<T: Send + 'static> Shard<T> {
    /// Waits for the shard's future to finish and returns its output.
    pub fn join(self) -> io::Result<T> {
        self.handle.join().map_err(io::Error::from)
    }
}

/// Starts a shard (as [`run_shard`]) without waiting for it.
pub fn start_shard<T, F, Fut>(name: &str, cpu: Option<usize>, make: F) -> io::Result<Shard<T>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let placement = match cpu {
        Some(cpu) => glommio::Placement::Fixed(cpu),
        None => glommio::Placement::Unbound,
    };
    let handle = glommio::LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(IO_MEMORY_BYTES)
        .spawn(make)
        .map_err(io::Error::from)?;
    Ok(Shard { handle })
}

/// Spawns a task on the current shard that runs on its own; its result is dropped.
pub fn spawn_detached(future: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(future).detach();
}

/// CPU shares of the background task queue, against the default queue's 1000: when both
/// have work, background tasks get about a tenth of the shard.
const BACKGROUND_SHARES: usize = 100;

thread_local! {
    static BACKGROUND: std::cell::OnceCell<glommio::TaskQueueHandle> =
        const { std::cell::OnceCell::new() };
}

/// Spawns a detached task in the shard's background queue (low shares, latency not
/// important): housekeeping such as retention yields to request handling.
pub fn spawn_background(future: impl Future<Output = ()> + 'static) {
    let queue = BACKGROUND.with(|queue| {
        *queue.get_or_init(|| {
            glommio::executor().create_task_queue(
                glommio::Shares::Static(BACKGROUND_SHARES),
                glommio::Latency::NotImportant,
                "background",
            )
        })
    });
    match glommio::spawn_local_into(future, queue) {
        Ok(task) => {
            task.detach();
        }
        Err(error) => tracing::error!(%error, "cannot spawn a background task"),
    }
}

/// Time the current shard's executor spent running tasks and polling for I/O since the
/// last call (the first call counts from the executor's start). Only the metrics sampler
/// may call it: each call takes what the previous one left.
pub fn busy_since_last_call() -> Duration {
    glommio::executor().executor_stats().total_runtime()
}

/// Lets every other task that is ready run before this one continues.
pub async fn yield_to_others() {
    futures_lite::future::yield_now().await;
}

/// Sleeps on the current shard.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// A listening socket (SO_REUSEPORT, so every shard can bind the same address).
#[derive(Debug)]
pub struct Listener {
    inner: glommio::net::TcpListener,
}

impl Listener {
    /// Binds `address`.
    ///
    /// Besides SO_REUSEPORT (every shard listens on the address), the socket sets
    /// SO_REUSEADDR, as Kafka's does: a broker restarted after a crash must not be kept off
    /// its port by its predecessor's connections in TIME_WAIT. (A port another process
    /// listens on stays refused.)
    pub fn bind(address: SocketAddr) -> io::Result<Listener> {
        Listener::bind_with(address, true)
    }

    /// Binds `address` for this shard alone (no SO_REUSEPORT: a second broker asking for
    /// the same port is refused).
    pub fn bind_exclusive(address: SocketAddr) -> io::Result<Listener> {
        Listener::bind_with(address, false)
    }

    fn bind_with(address: SocketAddr, shared: bool) -> io::Result<Listener> {
        use socket2::{Domain, Protocol, Socket, Type};
        use std::os::fd::{FromRawFd, IntoRawFd};
        let domain = if address.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(shared)?;
        socket.bind(&address.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        let fd = socket.into_raw_fd();
        // SAFETY: `fd` is a bound, listening TCP socket that nothing else owns:
        // `into_raw_fd` gave up the `Socket`'s ownership, and it passes to the listener here.
        #[allow(unsafe_code)]
        let inner = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        Ok(Listener { inner })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(io::Error::from)
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<Stream> {
        let stream = self.inner.accept().await.map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(stream)
    }
}
