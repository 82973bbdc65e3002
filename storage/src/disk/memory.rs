//! An in-memory disk for unit tests and simulation, with power loss.
//!
//! Every file keeps two images: what has been written and what an `fdatasync` made durable,
//! plus the writes since then. [`MemoryDisk::crash`] throws away what a power cut would:
//! each file goes back to its durable image with a seeded-random subset of its pending writes
//! replayed, each possibly torn at a 512-byte sector boundary — the states a real disk with a
//! write queue can be found in. Directory entries (creates, renames, removes) are durable at once, a
//! simplification the log does not rely on (it syncs directories anyway).
//!
//! It enforces the direct-I/O contract (aligned write offsets and lengths) so code that is
//! wrong on glommio fails here too.

use super::pool::{BufferPool, BUFFER_POOL_BYTES};
use super::{Disk, DiskBuffer, DiskFile};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The sector size a torn write is cut at.
const SECTOR_BYTES: usize = 512;

/// A filesystem in memory. Clones share it.
#[derive(Clone, Debug)]
pub struct MemoryDisk {
    fs: Rc<RefCell<Fs>>,
    pool: Rc<BufferPool<MemoryBuffer>>,
}

/// What a buffer from [`Disk::take_buffer`] holds when it is new: not zeros, so a test
/// catches code that writes bytes it never filled.
pub const POISON: u8 = 0xa5;

#[derive(Debug)]
struct Fs {
    alignment: usize,
    files: BTreeMap<PathBuf, Rc<RefCell<MemFile>>>,
    dirs: BTreeSet<PathBuf>,
    fdatasyncs: u64,
    reads: u64,
    fdatasync_stalled: bool,
    writes_fail: bool,
    spawned_dropped: bool,
    /// Files whose fdatasync waits until released, with how many more calls pass first.
    held_syncs: BTreeMap<PathBuf, u64>,
}

#[derive(Debug, Default)]
struct MemFile {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Writes (and size changes) since the last fdatasync, in order.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { pos: usize, bytes: Vec<u8> },
    Resize(usize),
}

impl Default for MemoryDisk {
    fn default() -> Self {
        MemoryDisk::with_alignment(4096)
    }
}

impl MemoryDisk {
    /// A disk whose writes must be aligned to `alignment` bytes.
    pub fn with_alignment(alignment: usize) -> MemoryDisk {
        assert!(alignment.is_power_of_two() && alignment >= SECTOR_BYTES);
        let fs = Fs {
            alignment,
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            fdatasyncs: 0,
            reads: 0,
            fdatasync_stalled: false,
            writes_fail: false,
            spawned_dropped: false,
            held_syncs: BTreeMap::new(),
        };
        MemoryDisk {
            fs: Rc::new(RefCell::new(fs)),
            pool: Rc::new(BufferPool::new(BUFFER_POOL_BYTES)),
        }
    }

    /// Simulates a power cut: see the module documentation. Each unsynced write survives
    /// or not at random (the device may complete queued writes in any order), and a
    /// surviving one may be torn; size changes survive in order. Open handles keep working
    /// on the post-crash contents (a test reopens the log through new handles anyway).
    pub fn crash(&self, seed: u64) {
        let mut rng = seed | 1;
        let fs = self.fs.borrow();
        for file in fs.files.values() {
            let mut file = file.borrow_mut();
            let mut image = file.durable.clone();
            for change in std::mem::take(&mut file.pending) {
                let survives = matches!(change, Pending::Resize(_)) || next(&mut rng) % 3 != 0;
                if survives {
                    let torn = next(&mut rng) % 4 == 0;
                    apply(&mut image, change, torn.then(|| next(&mut rng)));
                }
            }
            file.data = image.clone();
            file.durable = image;
        }
    }

    /// The pool [`Disk::take_buffer`] serves from.
    pub fn pool(&self) -> &BufferPool<MemoryBuffer> {
        &self.pool
    }

    /// While stalled, every fdatasync stays pending forever: a test polls a flush once (its
    /// writes are issued), drops it and crashes, catching writes that were never synced.
    pub fn stall_fdatasync(&self, stalled: bool) {
        self.fs.borrow_mut().fdatasync_stalled = stalled;
    }

    /// While held, an fdatasync of the file at `path` (opened after this call or before)
    /// does not complete; a poll after the release completes it. For ordering tests.
    pub fn hold_fdatasync(&self, path: &Path, held: bool) {
        self.hold_fdatasync_after(path, held.then_some(0));
    }

    /// Like [`MemoryDisk::hold_fdatasync`], letting the next `passes` calls on `path` through
    /// first; `None` releases it.
    pub fn hold_fdatasync_after(&self, path: &Path, passes: Option<u64>) {
        let mut fs = self.fs.borrow_mut();
        match passes {
            Some(passes) => fs.held_syncs.insert(path.to_path_buf(), passes),
            None => fs.held_syncs.remove(path),
        };
    }

    /// While set, every data write fails with an I/O error (a failing device).
    pub fn fail_writes(&self, failing: bool) {
        self.fs.borrow_mut().writes_fail = failing;
    }

    /// While set, background tasks are dropped unpolled, as by an executor shutting down.
    pub fn drop_spawned(&self, dropped: bool) {
        self.fs.borrow_mut().spawned_dropped = dropped;
    }

    /// Total reads so far (to check what the tail cache serves from memory).
    pub fn read_count(&self) -> u64 {
        self.fs.borrow().reads
    }

    /// Total fdatasync calls so far (to check group commit batches them).
    pub fn fdatasync_count(&self) -> u64 {
        self.fs.borrow().fdatasyncs
    }

    /// The current (not necessarily durable) contents of a file, for corrupting in tests.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs
            .borrow()
            .files
            .get(path)
            .map(|file| file.borrow().data.clone())
    }

    /// Replaces a file's contents, durably (for corruption fixtures).
    pub fn set_contents(&self, path: &Path, contents: Vec<u8>) {
        let mut fs = self.fs.borrow_mut();
        let file = fs.files.entry(path.to_path_buf()).or_default();
        let mut file = file.borrow_mut();
        file.data = contents.clone();
        file.durable = contents;
        file.pending.clear();
    }
}

/// xorshift64: deterministic per seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn apply(image: &mut Vec<u8>, change: Pending, tear: Option<u64>) {
    match change {
        Pending::Resize(len) => image.resize(len, 0),
        Pending::Write { pos, bytes } => {
            let sectors = bytes.len().div_ceil(SECTOR_BYTES);
            let len = match tear {
                Some(random) if sectors > 0 => {
                    ((random % sectors as u64) as usize * SECTOR_BYTES).min(bytes.len())
                }
                _ => bytes.len(),
            };
            if image.len() < pos + len {
                image.resize(pos + len, 0);
            }
            image[pos..pos + len].copy_from_slice(&bytes[..len]);
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl Disk for MemoryDisk {
    type File = MemoryFile;

    fn alignment(&self) -> usize {
        self.fs.borrow().alignment
    }

    fn alloc_buffer(&self, len: usize) -> MemoryBuffer {
        MemoryBuffer(vec![0; len])
    }

    fn take_buffer(&self, len: usize) -> MemoryBuffer {
        self.pool.take(len, || MemoryBuffer(vec![POISON; len]))
    }

    fn give_buffer(&self, buffer: MemoryBuffer) {
        self.pool.give(buffer);
    }

    async fn open(&self, path: &Path, create: bool) -> io::Result<MemoryFile> {
        let mut fs = self.fs.borrow_mut();
        let alignment = fs.alignment;
        let file = match fs.files.get(path) {
            Some(file) => file.clone(),
            None if create => {
                let parent = path.parent().unwrap_or(Path::new(""));
                if !parent.as_os_str().is_empty() && !fs.dirs.contains(parent) {
                    return Err(not_found(parent));
                }
                fs.files.entry(path.to_path_buf()).or_default().clone()
            }
            None => return Err(not_found(path)),
        };
        Ok(MemoryFile {
            file,
            alignment,
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        for ancestor in path.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            fs.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let files = fs.files.keys().filter(|path| path.parent() == Some(dir));
        let dirs = fs.dirs.iter().filter(|path| path.parent() == Some(dir));
        Ok(files
            .chain(dirs)
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        self.fs
            .borrow_mut()
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let file = fs.files.remove(from).ok_or_else(|| not_found(from))?;
        fs.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn spawn(&self, mut task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
        if self.fs.borrow().spawned_dropped {
            return;
        }
        // Memory I/O completes when polled: one poll runs the task to its end.
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let _ = task.as_mut().poll(&mut context);
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.fs.borrow().dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }
}

/// An open in-memory file.
#[derive(Debug)]
pub struct MemoryFile {
    file: Rc<RefCell<MemFile>>,
    alignment: usize,
    fs: Rc<RefCell<Fs>>,
    /// The path it was opened by.
    path: PathBuf,
}

/// A write buffer for [`MemoryFile`].
#[derive(Debug)]
pub struct MemoryBuffer(Vec<u8>);

impl DiskBuffer for MemoryBuffer {
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn trim(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

fn to_usize(value: u64) -> io::Result<usize> {
    usize::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

impl DiskFile for MemoryFile {
    type Buffer = MemoryBuffer;

    fn alignment(&self) -> usize {
        self.alignment
    }

    fn alloc_buffer(&self, len: usize) -> MemoryBuffer {
        MemoryBuffer(vec![0; len])
    }

    async fn write_at(&self, buffer: Rc<MemoryBuffer>, pos: u64) -> io::Result<usize> {
        let pos = to_usize(pos)?;
        let bytes = buffer.0.clone();
        if pos % self.alignment != 0 || bytes.len() % self.alignment != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "unaligned direct write of {} bytes at {pos} (alignment {})",
                    bytes.len(),
                    self.alignment
                ),
            ));
        }
        if self.fs.borrow().writes_fail {
            return Err(io::Error::other("injected write failure"));
        }
        let mut file = self.file.borrow_mut();
        if file.data.len() < pos + bytes.len() {
            file.data.resize(pos + bytes.len(), 0);
        }
        file.data[pos..pos + bytes.len()].copy_from_slice(&bytes);
        let len = bytes.len();
        file.pending.push(Pending::Write { pos, bytes });
        Ok(len)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.fs.borrow_mut().reads += 1;
        let pos = to_usize(pos)?;
        let file = self.file.borrow();
        let start = pos.min(file.data.len());
        let end = pos.saturating_add(len).min(file.data.len());
        Ok(file.data[start..end].to_vec())
    }

    async fn read_into(&self, pos: u64, out: &mut [u8]) -> io::Result<usize> {
        let read = self.read_at(pos, out.len()).await?;
        out[..read.len()].copy_from_slice(&read);
        Ok(read.len())
    }

    async fn fdatasync(&self) -> io::Result<()> {
        if self.fs.borrow().fdatasync_stalled {
            std::future::pending::<()>().await;
        }
        let passes = self
            .fs
            .borrow_mut()
            .held_syncs
            .get_mut(&self.path)
            .and_then(|left| {
                let pass = *left > 0;
                *left = left.saturating_sub(1);
                pass.then_some(())
            });
        std::future::poll_fn(|context| {
            if passes.is_none() && self.fs.borrow().held_syncs.contains_key(&self.path) {
                // Asks to be polled again, so whatever polls it next sees the release.
                context.waker().wake_by_ref();
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        let mut file = self.file.borrow_mut();
        file.durable = file.data.clone();
        file.pending.clear();
        self.fs.borrow_mut().fdatasyncs += 1;
        Ok(())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        let mut file = self.file.borrow_mut();
        if file.data.len() < len {
            file.data.resize(len, 0);
            file.pending.push(Pending::Resize(len));
        }
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        let mut file = self.file.borrow_mut();
        file.data.resize(len, 0);
        file.pending.push(Pending::Resize(len));
        Ok(())
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.file.borrow().data.len() as u64)
    }

    async fn close(self) -> io::Result<()> {
        Ok(())
    }
}
