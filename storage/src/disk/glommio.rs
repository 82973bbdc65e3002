//! The production disk: glommio DMA files (O_DIRECT, io_uring). The only place in `storage`
//! that names glommio.
//!
//! glommio 0.9 quirk (DESIGN §4): the first DMA file a process opens on a device must be
//! non-empty, or every later DMA read on that device fails with EOPNOTSUPP. [`GlommioDisk::new`]
//! therefore writes a 4 KiB probe file into the data directory with std::fs and opens and
//! reads it with glommio before anything else.
//!
//! Directory listing uses std::fs (glommio has no asynchronous readdir); it runs only when a
//! log opens, never on the data path.

use super::pool::{BufferPool, BUFFER_POOL_BYTES};
use super::{Disk, DiskBuffer, DiskFile};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Name of the probe file written into the data directory.
pub const PROBE_FILE: &str = ".spate-dma-probe";
const PROBE_BYTES: usize = 4096;

/// glommio's DMA files as a [`Disk`]. One per executor (shard): its clones share the
/// shard's pool of write buffers ([`super::pool`]).
#[derive(Clone, Debug)]
pub struct GlommioDisk {
    data_dir: PathBuf,
    pool: Rc<BufferPool<DmaBuffer>>,
}

impl GlommioDisk {
    /// Prepares direct I/O on the device holding `data_dir` (created if missing): writes and
    /// reads back the probe file. Call it on each executor before opening any log.
    pub async fn new(data_dir: &Path) -> io::Result<GlommioDisk> {
        std::fs::create_dir_all(data_dir)?;
        let probe = data_dir.join(PROBE_FILE);
        std::fs::write(&probe, [0x5a_u8; PROBE_BYTES])?;
        let file = DmaFile::open(&probe).await?;
        let read = file.read_at_aligned(0, PROBE_BYTES).await?;
        if read.len() != PROBE_BYTES || read.iter().any(|&b| b != 0x5a) {
            return Err(io::Error::other(format!(
                "direct-I/O probe of {} read back wrong data",
                probe.display()
            )));
        }
        file.close().await?;
        Ok(GlommioDisk {
            data_dir: data_dir.to_path_buf(),
            pool: Rc::new(BufferPool::new(BUFFER_POOL_BYTES)),
        })
    }

    /// The data directory this disk was probed on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The shard's pool of write buffers.
    pub fn pool(&self) -> &BufferPool<DmaBuffer> {
        &self.pool
    }
}

/// Runs `make()`'s future to completion on a new glommio executor (not pinned) with
/// `io_memory_bytes` of registered I/O memory, on a thread of its own. For tools and tests;
/// the broker builds its pinned shards in `broker/src/runtime/`.
///
/// Locked memory is scarce (8 MiB on the development machines, `ulimit -l`): keep
/// `io_memory_bytes` at a few MiB per executor.
pub fn run_executor<T, F, Fut>(name: &str, io_memory_bytes: usize, make: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .io_memory(io_memory_bytes)
        .spawn(make)
        .map_err(io::Error::from)?;
    handle.join().map_err(io::Error::from)
}

/// Runs `future` as a task of its own on the current glommio executor (so it gets its own
/// waker), returning a handle that resolves to its output. For tools and tests that need
/// many concurrent actors; the broker spawns through `broker/src/runtime/`.
pub fn spawn_local<T: 'static>(
    future: impl Future<Output = T> + 'static,
) -> impl Future<Output = T> {
    glommio::spawn_local(future)
}

/// A glommio DMA file.
#[derive(Debug)]
pub struct GlommioFile {
    file: DmaFile,
}

impl DiskBuffer for DmaBuffer {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }

    fn trim(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

/// Direct-I/O alignment used for every write: 4 KiB satisfies devices with 512-byte and
/// 4 KiB logical blocks alike.
const ALIGNMENT: usize = 4096;

impl Disk for GlommioDisk {
    type File = GlommioFile;

    fn alignment(&self) -> usize {
        ALIGNMENT
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        let mut buffer = glommio::allocate_dma_buffer(len);
        buffer.as_bytes_mut().fill(0);
        buffer
    }

    fn take_buffer(&self, len: usize) -> DmaBuffer {
        // Not zeroed: a new allocation's pages are first touched by the copy filling them.
        self.pool.take(len, || glommio::allocate_dma_buffer(len))
    }

    fn give_buffer(&self, buffer: DmaBuffer) {
        self.pool.give(buffer);
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<GlommioFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await?;
        Ok(GlommioFile { file })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        glommio::io::remove(path).await.map_err(io::Error::from)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        glommio::io::rename(from, to).await.map_err(io::Error::from)
    }

    fn spawn(&self, task: std::pin::Pin<Box<dyn Future<Output = ()>>>) {
        glommio::spawn_local(task).detach();
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let directory = glommio::io::Directory::open(dir).await?;
        directory.sync().await?;
        directory.close().await.map_err(io::Error::from)
    }
}

impl DiskFile for GlommioFile {
    type Buffer = DmaBuffer;

    fn alignment(&self) -> usize {
        usize::try_from(self.file.alignment()).unwrap_or(4096)
    }

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        let mut buffer = self.file.alloc_dma_buffer(len);
        buffer.as_bytes_mut().fill(0);
        buffer
    }

    async fn write_at(&self, buffer: Rc<DmaBuffer>, pos: u64) -> io::Result<usize> {
        // Readers keep their own reference to the buffer while the write is in flight.
        self.file
            .write_rc_at(buffer, pos)
            .await
            .map_err(io::Error::from)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let read = self.file.read_at(pos, len).await?;
        Ok(read.to_vec())
    }

    async fn read_into(&self, pos: u64, out: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(pos, out.len()).await?;
        let len = read.len().min(out.len());
        out[..len].copy_from_slice(&read[..len]);
        Ok(len)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        self.file
            .pre_allocate(len, false)
            .await
            .map_err(io::Error::from)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(io::Error::from)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(io::Error::from)
    }

    async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(io::Error::from)
    }
}
