//! A FUSE passthrough filesystem that keeps written data in memory until it is fsynced,
//! so that a simulated power loss ([`Disk::lose_unsynced`]) drops exactly what a real
//! disk's page cache would: every byte written since the file's last `fsync`/`fdatasync`.
//!
//! The model, after Jepsen's LazyFS:
//! - file *data* (writes, truncations, size-changing fallocate) is held per inode as an
//!   ordered list of pending operations layered over the backing file; reads and `stat`
//!   see the layered view, `fsync` applies the list to the backing file and syncs it;
//! - *metadata* (create, mkdir, rename, unlink) goes to the backing directory at once and
//!   survives a crash, as on a journalling filesystem that commits metadata eagerly. This
//!   is kinder than ext4 without `dirsync`, and deliberate: the server's durability rests
//!   on RocksDB's synced WAL, which this model attacks directly.
//!
//! The kernel page cache is bypassed (`FOPEN_DIRECT_IO`, zero attribute TTL), so that this
//! daemon is the only cache and nothing the node wrote survives a crash by accident.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// Attributes are never cached by the kernel: sizes change when unsynced data is dropped.
const TTL: Duration = Duration::ZERO;
const ROOT: u64 = 1;

/// One not-yet-synced change to a file's data.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// The unsynced state of one file: its operations in order and the size they lead to.
#[derive(Clone, Debug, Default)]
struct Dirty {
    ops: Vec<Pending>,
    size: u64,
}

impl Dirty {
    fn starting_at(size: u64) -> Self {
        Dirty { ops: Vec::new(), size }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Appends (the common case: logs) extend the previous write instead of growing the list.
        if let Some(Pending::Write { offset: last, data: bytes }) = self.ops.last_mut() {
            if *last + bytes.len() as u64 == offset {
                bytes.extend_from_slice(data);
                self.size = self.size.max(offset + data.len() as u64);
                return;
            }
        }
        self.ops.push(Pending::Write { offset, data: data.to_vec() });
        self.size = self.size.max(offset + data.len() as u64);
    }

    fn set_len(&mut self, len: u64) {
        self.ops.push(Pending::SetLen(len));
        self.size = len;
    }

    /// Lays the pending operations over `buf`, which holds the backing file's bytes from
    /// `start` (zero past the backing file's end). Invariant kept while folding: every byte
    /// at or past the current logical size is zero.
    fn overlay(&self, start: u64, buf: &mut [u8]) {
        let end = start + buf.len() as u64;
        for op in &self.ops {
            match op {
                Pending::Write { offset, data } => {
                    let (from, to) = ((*offset).max(start), (*offset + data.len() as u64).min(end));
                    if from < to {
                        buf[(from - start) as usize..(to - start) as usize]
                            .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
                    }
                }
                Pending::SetLen(len) => {
                    if *len < end {
                        let from = (*len).max(start);
                        buf[(from - start) as usize..].fill(0);
                    }
                }
            }
        }
    }
}

/// A handle on a mounted lazy disk, used to simulate power loss.
#[derive(Clone)]
pub struct Disk {
    state: Arc<Mutex<State>>,
}

impl Disk {
    /// Drops every write not yet fsynced (call after the process using the disk is dead).
    /// Returns how many files lost data.
    pub fn lose_unsynced(&self) -> usize {
        let mut state = lock(&self.state);
        let files = state.dirty.len();
        state.dirty.clear();
        files
    }
}

/// A mounted lazy disk; unmounted when dropped.
pub struct Mount {
    pub disk: Disk,
    _session: fuser::BackgroundSession,
}

/// Mounts a lazy disk at `mountpoint`, keeping its synced contents in `backing`.
pub fn mount(backing: &Path, mountpoint: &Path) -> anyhow::Result<Mount> {
    std::fs::create_dir_all(backing)?;
    std::fs::create_dir_all(mountpoint)?;
    let state = Arc::new(Mutex::new(State::new(backing.to_path_buf())));
    let fs = LazyFs { state: state.clone() };
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("lazyfs".into()), fuser::MountOption::DefaultPermissions];
    let session = fuser::spawn_mount(fs, mountpoint, &config)
        .map_err(|e| anyhow::anyhow!("mount lazy disk at {}: {e}", mountpoint.display()))?;
    Ok(Mount { disk: Disk { state }, _session: session })
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct State {
    backing: PathBuf,
    /// Inode → path relative to `backing` (root: empty path).
    paths: HashMap<u64, PathBuf>,
    inodes: HashMap<PathBuf, u64>,
    next_inode: u64,
    dirty: HashMap<u64, Dirty>,
    handles: HashMap<u64, File>,
    next_handle: u64,
}

type FsResult<T> = Result<T, Errno>;

impl State {
    fn new(backing: PathBuf) -> Self {
        let mut state = State {
            backing,
            paths: HashMap::new(),
            inodes: HashMap::new(),
            next_inode: ROOT + 1,
            dirty: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 1,
        };
        state.paths.insert(ROOT, PathBuf::new());
        state.inodes.insert(PathBuf::new(), ROOT);
        state
    }

    fn relative(&self, ino: u64) -> FsResult<PathBuf> {
        self.paths.get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: u64, name: &OsStr) -> FsResult<PathBuf> {
        Ok(self.relative(parent)?.join(name))
    }

    fn real(&self, relative: &Path) -> PathBuf {
        self.backing.join(relative)
    }

    fn inode_for(&mut self, relative: PathBuf) -> u64 {
        if let Some(ino) = self.inodes.get(&relative) {
            return *ino;
        }
        let ino = self.next_inode;
        self.next_inode += 1;
        self.paths.insert(ino, relative.clone());
        self.inodes.insert(relative, ino);
        ino
    }

    fn forget_path(&mut self, relative: &Path) {
        if let Some(ino) = self.inodes.remove(relative) {
            self.paths.remove(&ino);
            self.dirty.remove(&ino);
        }
    }

    fn attr(&self, ino: u64) -> FsResult<FileAttr> {
        let meta = std::fs::symlink_metadata(self.real(&self.relative(ino)?))?;
        let kind = if meta.is_dir() {
            FileType::Directory
        } else if meta.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        let size = self.dirty.get(&ino).map_or(meta.len(), |d| d.size);
        let time = |secs: i64, nanos: i64| UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos as u32);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: 4096,
            flags: 0,
        })
    }

    fn lookup(&mut self, parent: u64, name: &OsStr) -> FsResult<FileAttr> {
        let relative = self.child(parent, name)?;
        std::fs::symlink_metadata(self.real(&relative))?;
        let ino = self.inode_for(relative);
        self.attr(ino)
    }

    fn dirty_mut(&mut self, ino: u64) -> FsResult<&mut Dirty> {
        if !self.dirty.contains_key(&ino) {
            let len = std::fs::metadata(self.real(&self.relative(ino)?))?.len();
            self.dirty.insert(ino, Dirty::starting_at(len));
        }
        Ok(self.dirty.get_mut(&ino).expect("just inserted"))
    }

    fn open_handle(&mut self, file: File) -> u64 {
        let fh = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(fh, file);
        fh
    }

    fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let file = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        let logical = match self.dirty.get(&ino) {
            Some(dirty) => {
                dirty.overlay(offset, &mut buf);
                dirty.size
            }
            None => offset + filled as u64,
        };
        buf.truncate(logical.saturating_sub(offset).min(size as u64) as usize);
        Ok(buf)
    }

    /// Applies the file's pending operations to the backing file and syncs it.
    fn sync(&mut self, ino: u64, fh: u64) -> FsResult<()> {
        let file = self.handles.get(&fh).ok_or(Errno::EBADF)?;
        if let Some(dirty) = self.dirty.get(&ino) {
            for op in &dirty.ops {
                match op {
                    Pending::Write { offset, data } => file.write_all_at(data, *offset)?,
                    Pending::SetLen(len) => file.set_len(*len)?,
                }
            }
            file.set_len(dirty.size)?;
        }
        file.sync_all()?;
        self.dirty.remove(&ino);
        Ok(())
    }
}

/// Backing files are opened read-write whatever the caller asked for: syncing needs to
/// write, and permissions are checked by the kernel (`default_permissions`).
fn open_backing(path: &Path, flags: i32, create_mode: Option<u32>) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if let Some(mode) = create_mode {
        options.create(true).mode(mode);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        }
    }
    options.open(path)
}

struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.state().lookup(parent.0, name) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let result = (|| {
            if let Some(mode) = mode {
                let path = state.real(&state.relative(ino.0)?);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if let Some(size) = size {
                state.dirty_mut(ino.0)?.set_len(size);
            }
            state.attr(ino.0)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut state = self.state();
        let result = (|| {
            let relative = state.child(parent.0, name)?;
            std::fs::create_dir(state.real(&relative))?;
            std::fs::set_permissions(state.real(&relative), std::fs::Permissions::from_mode(mode & !umask & 0o7777))?;
            state.lookup(parent.0, name)
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = (|| {
            let relative = state.child(parent.0, name)?;
            std::fs::remove_file(state.real(&relative))?;
            state.forget_path(&relative);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = (|| {
            let relative = state.child(parent.0, name)?;
            std::fs::remove_dir(state.real(&relative))?;
            state.forget_path(&relative);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        let mut state = self.state();
        let result = (|| {
            let from = state.child(parent.0, name)?;
            let to = state.child(newparent.0, newname)?;
            std::fs::rename(state.real(&from), state.real(&to))?;
            // The replaced file (if any) is gone; every known path under `from` moves.
            state.forget_path(&to);
            let moved: Vec<(PathBuf, u64)> =
                state.inodes.iter().filter(|(p, _)| p.starts_with(&from)).map(|(p, i)| (p.clone(), *i)).collect();
            for (old, ino) in moved {
                // `join("")` would add a trailing slash, which a file path must not have.
                let suffix = old.strip_prefix(&from).expect("filtered by prefix");
                let new = if suffix.as_os_str().is_empty() { to.clone() } else { to.join(suffix) };
                state.inodes.remove(&old);
                state.inodes.insert(new.clone(), ino);
                state.paths.insert(ino, new);
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut state = self.state();
        let result = (|| {
            let path = state.real(&state.relative(ino.0)?);
            let file = open_backing(&path, flags.0, None)?;
            if flags.0 & libc::O_TRUNC != 0 {
                state.dirty_mut(ino.0)?.set_len(0);
            }
            Ok(state.open_handle(file))
        })();
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let result = (|| {
            let relative = state.child(parent.0, name)?;
            let file = open_backing(&state.real(&relative), flags, Some(mode & !umask & 0o7777))?;
            let attr = state.lookup(parent.0, name)?;
            if flags & libc::O_TRUNC != 0 {
                state.dirty_mut(attr.ino.0)?.set_len(0);
            }
            Ok((attr, state.open_handle(file)))
        })();
        match result {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino.0, fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        match state.dirty_mut(ino.0) {
            Ok(dirty) => {
                dirty.write(offset, data);
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() does not make data durable; only fsync does.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.state().sync(ino.0, fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let mut state = self.state();
        let result = (|| {
            let relative = state.relative(ino.0)?;
            let mut entries = vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
            let mut listing: Vec<_> = std::fs::read_dir(state.real(&relative))?.collect::<Result<_, _>>()?;
            listing.sort_by_key(|e| e.file_name());
            for entry in listing {
                let kind = if entry.file_type()?.is_dir() { FileType::Directory } else { FileType::RegularFile };
                let child = state.inode_for(relative.join(entry.file_name()));
                entries.push((child, kind, entry.file_name()));
            }
            Ok::<_, Errno>(entries)
        })();
        match result {
            Ok(entries) => {
                for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // Metadata is durable at once in this model (see the module comment).
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let backing = self.state().backing.clone();
        let Ok(path) = std::ffi::CString::new(backing.as_os_str().as_encoded_bytes()) else {
            return reply.error(Errno::EINVAL);
        };
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid C string and `stat` a valid out-pointer for the call.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return reply.error(Errno::from(std::io::Error::last_os_error()));
        }
        reply.statfs(
            stat.f_blocks,
            stat.f_bfree,
            stat.f_bavail,
            stat.f_files,
            stat.f_ffree,
            stat.f_bsize as u32,
            stat.f_namemax as u32,
            stat.f_frsize as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let result = (|| {
            // Preallocation with FALLOC_FL_KEEP_SIZE changes nothing a reader can see.
            if mode & libc::FALLOC_FL_KEEP_SIZE == 0 {
                let dirty = state.dirty_mut(ino.0)?;
                if offset + length > dirty.size {
                    dirty.set_len(offset + length);
                }
            } else if mode & !libc::FALLOC_FL_KEEP_SIZE != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(dirty: &Dirty, backing: &[u8], start: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = backing.get(start as usize + i).copied().unwrap_or(0);
        }
        dirty.overlay(start, &mut buf);
        buf.truncate(dirty.size.saturating_sub(start).min(len as u64) as usize);
        buf
    }

    #[test]
    fn overlay_applies_writes_and_truncations_in_order() {
        let backing = b"abcdefgh";
        let mut dirty = Dirty::starting_at(8);
        dirty.write(6, b"XYZ");
        assert_eq!(fill(&dirty, backing, 0, 16), b"abcdefXYZ");
        dirty.set_len(4);
        assert_eq!(fill(&dirty, backing, 0, 16), b"abcd");
        dirty.set_len(6);
        assert_eq!(fill(&dirty, backing, 0, 16), b"abcd\0\0");
        dirty.write(5, b"Q");
        dirty.write(6, b"R");
        assert_eq!(fill(&dirty, backing, 2, 16), b"cd\0QR");
        assert_eq!(dirty.ops.len(), 4, "the append extends the previous write");
    }

    /// Mounts a real lazy disk (needs /dev/fuse and root; required under CI).
    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        if std::fs::File::open("/dev/fuse").is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI must be able to mount FUSE");
            eprintln!("skipped: /dev/fuse is not usable here");
            return;
        }
        use std::io::Write;
        let root = std::env::temp_dir().join(format!("lazyfs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mount = mount(&root.join("backing"), &root.join("mnt")).expect("mount");
        let mnt = root.join("mnt");
        std::fs::create_dir(mnt.join("dir")).unwrap();
        let mut synced = File::create(mnt.join("dir/synced")).unwrap();
        synced.write_all(b"kept").unwrap();
        synced.sync_data().unwrap();
        synced.write_all(b"+lost").unwrap();
        assert_eq!(std::fs::read(mnt.join("dir/synced")).unwrap(), b"kept+lost", "reads see unsynced data");
        drop(synced);
        let mut never = File::create(mnt.join("never")).unwrap();
        never.write_all(b"unsynced").unwrap();
        drop(never);
        std::fs::write(mnt.join("tmp"), b"renamed").unwrap();
        File::open(mnt.join("tmp")).unwrap().sync_all().unwrap();
        std::fs::rename(mnt.join("tmp"), mnt.join("current")).unwrap();
        assert_eq!(std::fs::read(root.join("backing/dir/synced")).unwrap(), b"kept", "backing has synced part only");

        assert_eq!(mount.disk.lose_unsynced(), 2);
        assert_eq!(std::fs::read(mnt.join("dir/synced")).unwrap(), b"kept");
        assert_eq!(std::fs::read(mnt.join("never")).unwrap(), b"", "the file exists (metadata) but is empty");
        assert_eq!(std::fs::read(mnt.join("current")).unwrap(), b"renamed");
        drop(mount);
        let _ = std::fs::remove_dir_all(&root);
    }
}
