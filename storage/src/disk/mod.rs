//! The disk seam: the few file operations the log needs, as traits, so the log runs unchanged
//! on glommio's direct-I/O files in production ([`glommio::GlommioDisk`]) and on an in-memory
//! disk that can simulate power loss in tests ([`memory::MemoryDisk`]).
//!
//! The contract mirrors O_DIRECT: writes take a buffer from [`DiskFile::alloc_buffer`] and
//! must start at a multiple of [`DiskFile::alignment`] and cover a multiple of it; reads may
//! start anywhere and return fewer bytes at the end of the file. Nothing written is durable
//! until [`DiskFile::fdatasync`] returns. Files are always opened read-write (glommio's
//! `DmaFile::create` is write-only, and the log reads back what it writes).
//!
//! The futures are `!Send`: a file belongs to one shard, like the partition that owns it.

pub mod glommio;
pub mod memory;
pub mod pool;

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A buffer suitable for [`DiskFile::write_at`]: aligned for direct I/O, zero-filled when
/// allocated ([`Disk::alloc_buffer`]), holding what its last user left when reused
/// ([`Disk::take_buffer`]).
pub trait DiskBuffer: std::fmt::Debug {
    /// The buffer's bytes.
    fn bytes(&self) -> &[u8];

    /// The buffer's bytes, to fill.
    fn bytes_mut(&mut self) -> &mut [u8];

    /// Shortens the buffer to `len` bytes (an aligned length), so a write covers only them.
    fn trim(&mut self, len: usize);
}

/// A filesystem the log lives on.
#[allow(async_fn_in_trait)]
pub trait Disk: Clone + std::fmt::Debug + 'static {
    /// Its files.
    type File: DiskFile;

    /// The alignment every file of this disk accepts for writes (a multiple of each file's
    /// own [`DiskFile::alignment`]).
    fn alignment(&self) -> usize;

    /// A zeroed write buffer of `len` bytes, usable with any file of this disk.
    fn alloc_buffer(&self, len: usize) -> <Self::File as DiskFile>::Buffer;

    /// A write buffer of `len` bytes whose contents are unspecified — one handed back by
    /// [`Disk::give_buffer`] if the disk pools them: the caller writes every byte that
    /// reaches a file.
    fn take_buffer(&self, len: usize) -> <Self::File as DiskFile>::Buffer {
        self.alloc_buffer(len)
    }

    /// Hands back a buffer nothing uses any more, for a later [`Disk::take_buffer`].
    fn give_buffer(&self, buffer: <Self::File as DiskFile>::Buffer) {
        drop(buffer);
    }

    /// Opens `path` read-write, creating it (empty) if `create` and it does not exist.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Self::File>;

    /// Creates a directory and its parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of a directory.
    async fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Removes a file.
    async fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames a file, replacing `to` if it exists (atomic on a POSIX filesystem).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the directory's entries (creates, renames, removes) durable.
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Runs `task` in the background on the current thread's executor; a disk that has none
    /// polls it once and drops it if it is not done.
    fn spawn(&self, task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>);

    /// Writes a small file durably and atomically: a temporary file, fdatasync, rename over
    /// `path`, then a directory sync. For checkpoints and markers, never on the data path.
    async fn write_atomically(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let temporary = with_suffix(path, ".tmp");
        let file = self.open(&temporary, true).await?;
        file.truncate(0).await?;
        let alignment = file.alignment();
        let padded = contents.len().div_ceil(alignment).max(1) * alignment;
        let mut buffer = file.alloc_buffer(padded);
        buffer.bytes_mut()[..contents.len()].copy_from_slice(contents);
        file.write_at(Rc::new(buffer), 0).await?;
        file.truncate(contents.len() as u64).await?;
        file.fdatasync().await?;
        file.close().await?;
        self.rename(&temporary, path).await?;
        let parent = path.parent().unwrap_or(Path::new("."));
        self.sync_dir(parent).await
    }

    /// Reads a whole (small) file, or `None` if it does not exist.
    async fn read_small(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let file = match self.open(path, false).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.size().await?;
        let len = usize::try_from(size).map_err(|_| io::Error::other("file too large"))?;
        let bytes = file.read_at(0, len).await?;
        file.close().await?;
        Ok(Some(bytes))
    }
}

/// An open file.
#[allow(async_fn_in_trait)]
pub trait DiskFile: std::fmt::Debug + 'static {
    /// Its write buffers.
    type Buffer: DiskBuffer;

    /// The direct-I/O alignment of offsets and lengths for writes, in bytes.
    fn alignment(&self) -> usize;

    /// A zeroed buffer of `len` bytes (a multiple of the alignment) for writing.
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;

    /// Writes a whole buffer at `pos` (both aligned); returns the bytes written. The buffer is
    /// shared so readers can still see its bytes while the write is in flight.
    async fn write_at(&self, buffer: Rc<Self::Buffer>, pos: u64) -> io::Result<usize>;

    /// Reads up to `len` bytes at `pos` (any alignment); fewer at the end of the file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>>;

    /// Reads up to `out.len()` bytes at `pos` into `out` (any alignment); returns how many,
    /// fewer at the end of the file. One copy out of the disk's buffer.
    async fn read_into(&self, pos: u64, out: &mut [u8]) -> io::Result<usize>;

    /// Makes everything written so far durable.
    async fn fdatasync(&self) -> io::Result<()>;

    /// Reserves space so the file is at least `len` bytes; the new bytes read as zeros and
    /// the file's size becomes `len` (so appends inside it change no size metadata).
    async fn allocate(&self, len: u64) -> io::Result<()>;

    /// Sets the file's size to `len`.
    async fn truncate(&self, len: u64) -> io::Result<()>;

    /// The file's size in bytes.
    async fn size(&self) -> io::Result<u64>;

    /// Closes the file.
    async fn close(self) -> io::Result<()>;
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}
