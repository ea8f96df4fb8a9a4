//! Output files (`--reject-report`, `--summary`, `--output`): every path a
//! command will write is checked before its first write, and every file is
//! written whole or not at all.
//!
//! A path is refused (exit 2, naming its flag) when it is the database or
//! one of its `-wal`/`-shm`/`-journal` files, the input, another output of
//! the same command, a directory, or in a directory that does not exist or
//! cannot be written. Paths are compared resolved (symbolic links followed)
//! and, where the file exists, by device and inode.
//!
//! A regular file is written to a temporary file in its own directory,
//! flushed to disk, and renamed over the path: a crash never leaves half a
//! report where the last good one stood. A path that exists and is not a
//! regular file (`/dev/stdout`, a pipe) is written directly.

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A path the command must never write, and what it is (for the message).
#[derive(Debug, Clone)]
pub struct Protected {
    pub what: &'static str,
    pub path: PathBuf,
}

/// An output path refused before anything was written.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {reason}", .path.display())]
pub struct OutputError {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// An output path that passed the checks.
#[derive(Debug)]
pub struct OutputFile {
    pub flag: &'static str,
    /// As the user gave it, for messages.
    pub path: PathBuf,
    /// Symbolic links followed: the file that is replaced.
    target: PathBuf,
    /// Not a regular file (a device or a pipe): written in place.
    direct: bool,
}

/// Checks every output of a command (`(flag, path)`) against the protected
/// paths and each other, before anything is written.
pub fn check_outputs(
    protected: &[Protected],
    outputs: &[(&'static str, &Path)],
) -> Result<Vec<OutputFile>, OutputError> {
    let protected: Vec<(&Protected, Identity)> = protected
        .iter()
        .filter_map(|p| Identity::of(&p.path).map(|id| (p, id)))
        .collect();
    let mut checked: Vec<(OutputFile, Identity)> = Vec::with_capacity(outputs.len());
    for &(flag, path) in outputs {
        let refuse = |reason: String| OutputError {
            flag,
            path: path.to_path_buf(),
            reason,
        };
        let identity = Identity::of(path).ok_or_else(|| refuse(missing_directory(path)))?;
        if let Some((what, _)) = protected.iter().find(|(_, id)| id.same_as(&identity)) {
            return Err(refuse(format!("that is {}; choose another path", what.what)));
        }
        if let Some((other, _)) = checked.iter().find(|(_, id)| id.same_as(&identity)) {
            return Err(refuse(format!(
                "{} writes the same file; give each output its own path",
                other.flag
            )));
        }
        let metadata = std::fs::metadata(&identity.resolved).ok();
        if metadata.as_ref().is_some_and(|m| m.is_dir()) || path.as_os_str().to_string_lossy().ends_with('/') {
            return Err(refuse("that is a directory; give a file name".into()));
        }
        let direct = metadata.as_ref().is_some_and(|m| !m.is_file());
        if direct {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&identity.resolved)
                .map_err(|e| refuse(format!("cannot be written: {e}")))?;
        } else {
            let directory = parent_directory(&identity.resolved);
            temporary_beside(&identity.resolved, None)
                .map_err(|e| refuse(format!("cannot write in directory {}: {e}", directory.display())))?;
        }
        let file = OutputFile {
            flag,
            path: path.to_path_buf(),
            target: identity.resolved.clone(),
            direct,
        };
        checked.push((file, identity));
    }
    Ok(checked.into_iter().map(|(file, _)| file).collect())
}

impl OutputFile {
    /// Starts writing the file: nothing appears at its path until
    /// [`PendingOutput::commit`].
    pub fn create(&self) -> io::Result<PendingOutput> {
        let file = if self.direct {
            Target::Direct(std::fs::OpenOptions::new().write(true).open(&self.target)?)
        } else {
            let keep_mode = std::fs::metadata(&self.target).ok().map(|m| m.permissions());
            Target::Replace(temporary_beside(&self.target, keep_mode)?)
        };
        Ok(PendingOutput {
            writer: BufWriter::with_capacity(1 << 16, file),
            target: self.target.clone(),
        })
    }
}

/// An output being written.
pub struct PendingOutput {
    writer: BufWriter<Target>,
    target: PathBuf,
}

enum Target {
    Replace(tempfile::NamedTempFile),
    Direct(File),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Replace(file) => file.write(buf),
            Target::Direct(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Replace(file) => file.flush(),
            Target::Direct(file) => file.flush(),
        }
    }
}

impl Write for PendingOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl PendingOutput {
    /// Flushes everything written so far to disk (without putting the file in place).
    pub fn sync(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        match self.writer.get_ref() {
            Target::Replace(file) => file.as_file().sync_all(),
            Target::Direct(_) => Ok(()),
        }
    }

    /// Puts the file in place: flushed, synced, and renamed over its path.
    pub fn commit(mut self) -> io::Result<()> {
        self.sync()?;
        let target = self.target;
        match self.writer.into_inner().map_err(|e| e.into_error())? {
            Target::Replace(file) => {
                file.persist(&target).map_err(|e| e.error)?;
                // The rename is durable once the directory is synced.
                if let Ok(directory) = File::open(parent_directory(&target)) {
                    let _ = directory.sync_all();
                }
                Ok(())
            }
            Target::Direct(_) => Ok(()),
        }
    }
}

/// A temporary file in the directory of `target`, with `mode` (else the
/// usual mode for a new file, after the umask).
fn temporary_beside(target: &Path, mode: Option<Permissions>) -> io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".cardbatch-tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(mode.unwrap_or_else(|| Permissions::from_mode(0o666)));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder.tempfile_in(parent_directory(target))
}

fn parent_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn missing_directory(path: &Path) -> String {
    format!("directory {} does not exist", parent_directory(path).display())
}

/// Where a path leads: resolved, and the file's device and inode when it exists.
#[derive(Debug)]
struct Identity {
    resolved: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    /// `None` when the path's directory does not exist.
    fn of(path: &Path) -> Option<Identity> {
        let resolved = match std::fs::canonicalize(path) {
            Ok(resolved) => resolved,
            Err(_) => {
                let directory = std::fs::canonicalize(parent_directory(path)).ok()?;
                if !directory.is_dir() {
                    return None;
                }
                directory.join(path.file_name()?)
            }
        };
        let inode = inode(&resolved);
        Some(Identity { resolved, inode })
    }

    fn same_as(&self, other: &Identity) -> bool {
        self.resolved == other.resolved || (self.inode.is_some() && self.inode == other.inode)
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(protected: &[Protected], outputs: &[(&'static str, &Path)]) -> String {
        check_outputs(protected, outputs).unwrap_err().to_string()
    }

    #[test]
    fn outputs_never_replace_the_database_the_input_or_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("cards.db");
        let input = dir.path().join("in.csv");
        std::fs::write(&database, "db").unwrap();
        std::fs::write(&input, "card_number\n").unwrap();
        let mut wal = database.clone().into_os_string();
        wal.push("-wal");
        let protected = [
            Protected {
                what: "the database",
                path: database.clone(),
            },
            Protected {
                what: "the database's write-ahead log",
                path: PathBuf::from(wal.clone()),
            },
            Protected {
                what: "the input",
                path: input.clone(),
            },
        ];
        let message = refused(&protected, &[("--reject-report", &database)]);
        assert!(
            message.starts_with("--reject-report") && message.contains("the database"),
            "{message}"
        );
        // The same file by another name, and a WAL file that does not exist yet.
        let other_name = dir.path().join(".").join("in.csv");
        assert!(refused(&protected, &[("--summary", &other_name)]).contains("the input"));
        assert!(refused(&protected, &[("--summary", Path::new(&wal))]).contains("write-ahead"));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.csv");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(refused(&protected, &[("--summary", &link)]).contains("the input"));
        }
        let report = dir.path().join("r.csv");
        let message = refused(&protected, &[("--reject-report", &report), ("--summary", &report)]);
        assert!(message.contains("--reject-report writes the same file"), "{message}");
        assert!(refused(&protected, &[("--summary", dir.path())]).contains("directory"));
        let missing = dir.path().join("missing-dir").join("s.json");
        assert!(refused(&protected, &[("--summary", &missing)]).contains("does not exist"));
        // Nothing was written by the checks.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_file_appears_whole_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        std::fs::write(&path, "the last good report\n").unwrap();
        let outputs = check_outputs(&[], &[("--reject-report", &path)]).unwrap();
        let mut pending = outputs[0].create().unwrap();
        pending.write_all(b"half a new rep").unwrap();
        pending.sync().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "the last good report\n");
        drop(pending); // a failure before commit leaves the old file and no temporary one
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut pending = outputs[0].create().unwrap();
        pending.write_all(b"new report\n").unwrap();
        pending.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new report\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn devices_are_written_in_place() {
        let outputs = check_outputs(&[], &[("--summary", Path::new("/dev/null"))]).unwrap();
        let mut pending = outputs[0].create().unwrap();
        pending.write_all(b"{}").unwrap();
        pending.commit().unwrap();
        assert!(Path::new("/dev/null").exists());
    }
}
