//! Database URLs: which backend a URL names, its printable (redacted) form,
//! and for SQLite the files it stands for.

use std::path::PathBuf;
use std::str::FromStr;

/// A database URL, checked before anything is opened.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
    /// The SQLite database file (none for PostgreSQL or an in-memory database).
    file: Option<PathBuf>,
}

/// A database URL that cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("database URL {0} is neither sqlite:// nor postgres://")]
    UnknownScheme(String),
    #[error("database URL {url} is not valid: {reason}")]
    Invalid { url: String, reason: String },
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, UrlError> {
        let invalid = |reason: String| UrlError::Invalid {
            url: redact(url),
            reason,
        };
        let backend = Backend::from_url(url).ok_or_else(|| UrlError::UnknownScheme(redact(url)))?;
        let file = match backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
                let name = options.get_filename();
                let in_memory = name.to_str().is_some_and(|n| n == ":memory:" || n.starts_with("file:"));
                (!in_memory).then(|| name.to_path_buf())
            }
            Backend::Postgres => {
                sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
                None
            }
        };
        Ok(DatabaseUrl {
            url: url.to_string(),
            backend,
            file,
        })
    }

    /// The URL as given, password included: only for connecting.
    pub fn secret(&self) -> &str {
        &self.url
    }

    /// The URL with its password redacted, for anything printed.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, if the URL names one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Every file the database may write: the database and its `-wal`,
    /// `-shm` and `-journal` companions (none for PostgreSQL).
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        let mut files = vec![file.clone()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = file.clone().into_os_string();
            name.push(suffix);
            files.push(PathBuf::from(name));
        }
        files
    }
}

/// The backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend for `url`, from its scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// `url` with any password replaced by `***`, in the user-info part
/// (`user:secret@host`) and in a `password=` query parameter alike.
pub fn redact(url: &str) -> String {
    let mut redacted = url.to_string();
    if let Some(scheme_end) = redacted.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = redacted[authority_start..]
            .find(['/', '?', '#'])
            .map_or(redacted.len(), |i| authority_start + i);
        if let Some(at) = redacted[authority_start..authority_end].rfind('@') {
            let user_info = &redacted[authority_start..authority_start + at];
            if let Some(colon) = user_info.find(':') {
                let password_start = authority_start + colon + 1;
                redacted.replace_range(password_start..authority_start + at, "***");
            }
        }
    }
    if let Some(query_start) = redacted.find('?') {
        let (head, query) = redacted.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        redacted = format!("{head}{query}");
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/cards"),
            "postgres://app:***@db:5432/cards"
        );
        assert_eq!(redact("postgres://app:p@ss@db/cards"), "postgres://app:***@db/cards");
        assert_eq!(
            redact("postgres://db/cards?user=app&password=s3cret"),
            "postgres://db/cards?user=app&password=***"
        );
        assert_eq!(redact("postgres://app@db/cards"), "postgres://app@db/cards");
        assert_eq!(redact("sqlite://cardbatch.db"), "sqlite://cardbatch.db");
    }

    #[test]
    fn sqlite_urls_name_their_files() {
        let url = DatabaseUrl::parse("sqlite://data/cards.db").unwrap();
        assert_eq!(url.file(), Some(std::path::Path::new("data/cards.db")));
        assert_eq!(url.files()[1], PathBuf::from("data/cards.db-wal"));
        assert_eq!(DatabaseUrl::parse("sqlite::memory:").unwrap().file(), None);
        assert!(DatabaseUrl::parse("postgres://u:pw@h/db").unwrap().files().is_empty());
        let unknown = DatabaseUrl::parse("mysql://u:pw@h/db").unwrap_err().to_string();
        assert!(unknown.contains("***") && !unknown.contains("pw"), "{unknown}");
    }

    #[test]
    fn backend_from_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("mysql://h/db"), None);
    }
}
