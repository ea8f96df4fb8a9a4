//! Opening an import's input: a file or stdin (spooled to a temporary file so
//! that its content hash is known before the first record is read), gzip
//! detected by its magic bytes, the format from `--format`, the file name, or
//! the first byte.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

pub use crate::batch::Format;
use crate::store::RunState;

/// An input that cannot be used at all (exit 2, nothing written).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {name}: {source}")]
    Unreadable { name: String, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// An opened input, identified by the BLAKE3 hash of its bytes (decompressed, for gzip).
pub struct Input {
    /// As given on the command line (`-` for stdin).
    pub name: String,
    path: PathBuf,
    /// Keeps a spooled stdin alive for as long as the input is read.
    _spool: Option<tempfile::NamedTempFile>,
    pub gzip: bool,
    pub format: Format,
    pub hash: String,
    /// The length of the content that `hash` covers (decompressed, for gzip).
    pub content_bytes: u64,
    /// The SHA-256 of the file as stored (compressed, for gzip), in hex.
    pub sha256: String,
    /// The file's absolute path, for the report (`None` for stdin).
    pub shown_path: Option<String>,
    /// Size in bytes as stored (compressed, for gzip).
    pub size: u64,
    /// Bytes of the stored file read so far, for the progress display.
    pub bytes_read: Arc<AtomicU64>,
}

impl Input {
    /// Opens `name` (a path, or `-` for stdin) and hashes it.
    pub fn open(name: &str, format: Option<Format>) -> Result<Input, InputError> {
        let unreadable = |source| InputError::Unreadable {
            name: name.to_string(),
            source,
        };
        let (path, spool) = if name == "-" {
            let mut spool = tempfile::NamedTempFile::new().map_err(unreadable)?;
            io::copy(&mut io::stdin().lock(), &mut spool).map_err(unreadable)?;
            spool.flush().map_err(unreadable)?;
            (spool.path().to_path_buf(), Some(spool))
        } else {
            (PathBuf::from(name), None)
        };
        let metadata = std::fs::metadata(&path).map_err(unreadable)?;
        if !metadata.is_file() {
            return Err(InputError::Invalid(format!("{name} is not a file")));
        }
        let mut magic = [0u8; 2];
        let gzip = File::open(&path)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(unreadable)?
            == 2
            && magic == [0x1f, 0x8b];
        // The run key and the file's SHA-256 (for people comparing it with
        // `sha256sum`) are computed at once, each reading the file.
        let (hash, sha256) = std::thread::scope(|scope| {
            let sha256 = scope.spawn(|| sha256_of(&path));
            (content_hash(&path, gzip), sha256.join())
        });
        let sha256 = sha256.unwrap_or_else(|_| Err(io::Error::other("the hashing thread panicked")));
        let (hash, content_bytes) = hash.map_err(unreadable)?;
        let mut input = Input {
            name: name.to_string(),
            // Resolved, `..` and links included, so that the report names the file itself.
            shown_path: spool.is_none().then(|| {
                std::fs::canonicalize(&path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string()
            }),
            path,
            _spool: spool,
            gzip,
            format: Format::Csv,
            hash,
            content_bytes,
            sha256: sha256.map_err(unreadable)?,
            size: metadata.len(),
            bytes_read: Arc::new(AtomicU64::new(0)),
        };
        input.format = match format.or_else(|| format_from_name(name)) {
            Some(format) => format,
            None => input.sniff_format().map_err(unreadable)?,
        };
        Ok(input)
    }

    /// A fresh reader over the decompressed content.
    pub fn reader(&self) -> io::Result<Box<dyn BufRead + Send>> {
        let file = CountingReader {
            inner: File::open(&self.path)?,
            count: Arc::clone(&self.bytes_read),
        };
        Ok(if self.gzip {
            Box::new(BufReader::with_capacity(
                1 << 18,
                MultiGzDecoder::new(BufReader::new(file)),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 18, file))
        })
    }

    /// The run key of the content's first `length` bytes (as [`Input::hash`]
    /// is of all of it), the last of them and the byte after them, if any.
    pub fn prefix(&self, length: u64) -> io::Result<(String, Option<u8>, Option<u8>)> {
        let mut content = self.reader()?;
        let mut hasher = blake3::Hasher::new();
        let mut last = None;
        let mut left = length;
        while left > 0 {
            let buffer = content.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min(left as usize);
            hasher.update(&buffer[..take]);
            last = Some(buffer[take - 1]);
            content.consume(take);
            left -= take as u64;
        }
        let next = content.fill_buf()?.first().copied();
        // The progress display counts the real reading from zero.
        self.bytes_read.store(0, Ordering::Relaxed);
        Ok((hasher.finalize().to_hex().to_string(), last, next))
    }

    /// The input's file, or `None` for stdin.
    pub fn file(&self) -> Option<&Path> {
        (self.name != "-").then_some(self.path.as_path())
    }

    /// JSON lines when the first non-blank byte opens an object, CSV otherwise.
    fn sniff_format(&self) -> io::Result<Format> {
        let mut reader = self.reader()?;
        loop {
            let buffer = reader.fill_buf()?;
            let Some(&first) = buffer
                .iter()
                .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF)
            else {
                if buffer.is_empty() {
                    return Ok(Format::Csv);
                }
                let consumed = buffer.len();
                reader.consume(consumed);
                continue;
            };
            return Ok(if first == b'{' { Format::Jsonl } else { Format::Csv });
        }
    }
}

/// The run key: the BLAKE3 hash of the content. A compressed input is
/// identified by its records: gzip's header keeps a time stamp, so the same
/// records compressed twice differ.
/// Returns the hash and the content's length.
fn content_hash(path: &Path, gzip: bool) -> io::Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let file = File::open(path)?;
    if gzip {
        hasher.update_reader(MultiGzDecoder::new(BufReader::new(file)))?;
    } else {
        hasher.update_reader(file)?;
    }
    Ok((hasher.finalize().to_hex().to_string(), hasher.count()))
}

/// The SHA-256 of the file's bytes as stored, in hex.
fn sha256_of(path: &Path) -> io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The default reject report of a run of input `name` (`-` for stdin,
/// whose reports are `stdin.*`), beside the input: `FILE.dry-run.rejects.csv`
/// for a dry run; otherwise `FILE.rejects.csv` when nothing stands there or
/// what stands there is this run's own report (`run` `None`: not known yet),
/// and `FILE.runN.rejects.csv` when another run's report (or any other
/// file) does, so that no night's report replaces another's.
pub fn default_report_path(name: &str, run: Option<&RunState>, dry_run: bool) -> PathBuf {
    let base = if name == "-" { "stdin" } else { name };
    if dry_run {
        return PathBuf::from(format!("{base}.dry-run.rejects.csv"));
    }
    let plain = PathBuf::from(format!("{base}.rejects.csv"));
    let Some(run) = run else { return plain };
    let ours = |path: &Path| {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        run.reject_report.as_deref() == Some(absolute.to_string_lossy().as_ref())
    };
    if !plain.exists() || ours(&plain) {
        plain
    } else {
        PathBuf::from(format!("{base}.run{}.rejects.csv", run.run_id))
    }
}

fn format_from_name(name: &str) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    match Path::new(stem).extension()?.to_str()? {
        "csv" => Some(Format::Csv),
        "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
        _ => None,
    }
}

/// Counts the bytes read from the stored file.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_file_names() {
        assert_eq!(format_from_name("drop/cards.csv"), Some(Format::Csv));
        assert_eq!(format_from_name("cards.CSV.gz"), Some(Format::Csv));
        assert_eq!(format_from_name("cards.jsonl.gz"), Some(Format::Jsonl));
        assert_eq!(format_from_name("cards.ndjson"), Some(Format::Jsonl));
        assert_eq!(format_from_name("cards.txt"), None);
        assert_eq!(format_from_name("-"), None);
    }
}
