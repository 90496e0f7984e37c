//! A directory served as a capsule: maps a canonical request path to a file,
//! a directory index, a generated listing, a redirect or "not found", and never
//! to anything outside the root. The segments it opens are the ones
//! [`CanonicalPath::segments`] decodes, once, from the very path the guard
//! checked; encoded separators, dot files and symbolic links that leave the
//! root are all "not found". What it serves comes with the canonical path of
//! the real file, so rules can be checked on that too (an index file, or a
//! symbolic link inside the root, can lead to another path than the request's).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use tessera_guard::CanonicalPath;

use crate::meta::{self, Override};
use crate::rules::PathRules;

use crate::Error;

/// The file served for a directory when it exists.
pub const INDEX_FILE: &str = "index.gmi";

/// Entries a generated listing shows at most (a huge directory must not cost unbounded memory).
pub const MAX_LISTING: usize = 10_000;

/// Characters escaped in links of generated listings.
const LINK: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A directory served as a capsule.
#[derive(Clone, Debug)]
pub struct Capsule {
    root: PathBuf,
    gemtext_mime: String,
    listings: bool,
    meta_files: bool,
    rules: PathRules,
}

/// What a path resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A regular file inside the root and its MIME type.
    File {
        /// The file, symbolic links resolved.
        path: PathBuf,
        /// Its MIME type.
        mime: String,
        /// The file's own canonical path below the root.
        canonical: CanonicalPath,
    },
    /// A generated gemtext listing of a directory without an index.
    Listing {
        /// The gemtext.
        body: String,
        /// The directory's own canonical path below the root.
        canonical: CanonicalPath,
    },
    /// A directory requested without its trailing slash: the path to redirect to.
    Redirect(String),
    /// A file whose directory's `.meta` answers for it with this status
    /// (a redirect, `52 Gone`, …).
    Answer {
        /// The status line to send instead of the file.
        header: crate::Header,
        /// The file's own canonical path below the root.
        canonical: CanonicalPath,
    },
    /// Nothing servable.
    NotFound,
}

impl Resolved {
    /// The canonical path of what is served (file or listed directory), if anything is.
    pub fn served(&self) -> Option<&CanonicalPath> {
        match self {
            Self::File { canonical, .. }
            | Self::Listing { canonical, .. }
            | Self::Answer { canonical, .. } => Some(canonical),
            Self::Redirect(_) | Self::NotFound => None,
        }
    }
}

impl Capsule {
    /// Serves `root`; `.gmi` files as `gemtext_mime`; directories without an
    /// index get a generated listing when `listings` is set.
    ///
    /// # Errors
    /// [`Error::Config`] when `root` is not a readable directory.
    pub fn new(root: &Path, gemtext_mime: String, listings: bool) -> Result<Self, Error> {
        let root = root
            .canonicalize()
            .map_err(|e| Error::Config(format!("capsule root {}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(Error::Config(format!(
                "capsule root {} is not a directory",
                root.display()
            )));
        }
        Ok(Self {
            root,
            gemtext_mime,
            listings,
            meta_files: false,
            rules: PathRules::default(),
        })
    }

    /// Answers and MIME types by path pattern (`rules.rs`), checked before
    /// the files.
    #[must_use]
    pub fn with_rules(mut self, rules: PathRules) -> Self {
        self.rules = rules;
        self
    }

    /// Reads agate-style `.meta` files for per-file MIME types and statuses
    /// (`meta.rs`). Off by default: it costs a file lookup per request.
    #[must_use]
    pub fn with_meta_files(mut self, read: bool) -> Self {
        self.meta_files = read;
        self
    }

    /// The root, symbolic links resolved.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The MIME type `.gmi` files are served as.
    pub fn gemtext_mime(&self) -> &str {
        &self.gemtext_mime
    }

    /// Resolves a path with a few blocking system calls (an `lstat` per name
    /// below the root, more where a symbolic link is on the way).
    pub fn resolve(&self, path: &CanonicalPath) -> Resolved {
        if let Some(header) = self.rules.answer(path) {
            return Resolved::Answer {
                header,
                canonical: path.clone(),
            };
        }
        let Some(relative) = relative(path) else {
            return Resolved::NotFound;
        };
        let candidate = self.root.join(&relative);
        let Some((real, metadata)) = self.inside_root(&candidate) else {
            return Resolved::NotFound;
        };
        if metadata.is_file() {
            return self.file(real);
        }
        if !metadata.is_dir() {
            return Resolved::NotFound;
        }
        if !path.is_directory() {
            return Resolved::Redirect(format!("{path}/"));
        }
        let index = real.join(INDEX_FILE);
        if let Some((index, _)) = self.inside_root(&index).filter(|(_, m)| m.is_file()) {
            return self.file(index);
        }
        if self.listings {
            return Resolved::Listing {
                body: listing(&real, path.as_str()),
                canonical: self.canonical(&real, true),
            };
        }
        Resolved::NotFound
    }

    /// `path` (the root joined with plain names) with symbolic links
    /// resolved, and what it is, if it exists and stays inside the root.
    ///
    /// The root is already real, so a path without a symbolic link below it
    /// is real too: that costs an `lstat` per name, where `canonicalize`
    /// would read every link of the root's own path on each request.
    fn inside_root(&self, path: &Path) -> Option<(PathBuf, Metadata)> {
        let below = path.strip_prefix(&self.root).ok()?;
        let mut walked = self.root.clone();
        let mut last = None;
        for name in below.components() {
            walked.push(name);
            let metadata = std::fs::symlink_metadata(&walked).ok()?;
            if metadata.is_symlink() {
                return self.through_links(path);
            }
            last = Some(metadata);
        }
        let metadata = match last {
            Some(metadata) => metadata,
            None => std::fs::metadata(&walked).ok()?,
        };
        Some((walked, metadata))
    }

    /// [`Self::inside_root`] for a path with a symbolic link on the way.
    fn through_links(&self, path: &Path) -> Option<(PathBuf, Metadata)> {
        let real = path.canonicalize().ok()?;
        if !real.starts_with(&self.root) {
            return None;
        }
        let metadata = std::fs::metadata(&real).ok()?;
        Some((real, metadata))
    }

    /// The canonical request path of `real`, a path inside the root.
    fn canonical(&self, real: &Path, directory: bool) -> CanonicalPath {
        // `real` passed `inside_root`, so it starts with the root.
        let below = real.strip_prefix(&self.root).unwrap_or(real);
        CanonicalPath::from_segments(below.iter().map(OsStrExt::as_bytes), directory)
    }

    fn file(&self, path: PathBuf) -> Resolved {
        let mime = match path.extension().and_then(OsStr::to_str) {
            Some("gmi" | "gemini") => self.gemtext_mime.clone(),
            _ => mime_guess::from_path(&path)
                .first_or_octet_stream()
                .essence_str()
                .to_owned(),
        };
        let canonical = self.canonical(&path, false);
        let mut mime = self.rules.mime(&canonical, mime);
        let found = match (self.meta_files, path.parent(), path.file_name()) {
            (true, Some(dir), Some(name)) => meta::lookup(dir, &name.to_string_lossy()),
            _ => None,
        };
        match found {
            Some(Override::Parameters(parameters)) => mime.push_str(&parameters),
            Some(Override::Mime(replacement)) => mime = replacement,
            Some(Override::Status(header)) => return Resolved::Answer { header, canonical },
            None => {}
        }
        Resolved::File {
            path,
            mime,
            canonical,
        }
    }
}

/// The path below the root, or `None` for encoded separators, dot files
/// and anything that is not a plain name.
fn relative(path: &CanonicalPath) -> Option<PathBuf> {
    if path.has_encoded_separator() {
        return None;
    }
    let mut relative = PathBuf::new();
    for segment in path.segments() {
        if segment.first() == Some(&b'.') || segment.contains(&b'/') || segment.contains(&0) {
            return None;
        }
        relative.push(OsStr::from_bytes(&segment));
    }
    Some(relative)
}

/// A gemtext listing of `dir` (requested as `path`): sorted, directories first
/// with a trailing slash, dot files hidden, at most [`MAX_LISTING`] entries.
fn listing(dir: &Path, path: &str) -> String {
    let mut entries: Vec<(bool, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let is_dir = entry.path().is_dir();
            Some((!is_dir, name))
        })
        .take(MAX_LISTING)
        .collect();
    entries.sort();
    let mut out = format!("# Index of {path}\n\n");
    if path != "/" {
        out.push_str("=> ../ ..\n");
    }
    for (is_file, name) in entries {
        let slash = if is_file { "" } else { "/" };
        let link = utf8_percent_encode(&name, LINK);
        let _ = writeln!(out, "=> {link}{slash} {name}{slash}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capsule() -> (tempfile::TempDir, Capsule) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("index.gmi"), "# Home\n").unwrap();
        std::fs::write(root.join("docs/a b.txt"), "text").unwrap();
        std::fs::write(root.join("docs/pic.png"), "png").unwrap();
        std::fs::write(root.join(".secret"), "hidden").unwrap();
        std::fs::write(dir.path().join("outside.gmi"), "outside").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.gmi"), root.join("escape.gmi"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("index.gmi"), root.join("inside.gmi")).unwrap();
        let capsule = Capsule::new(&root, "text/gemini; charset=utf-8".into(), true).unwrap();
        (dir, capsule)
    }

    fn resolve(capsule: &Capsule, raw: &str) -> Resolved {
        capsule.resolve(&CanonicalPath::parse(raw).unwrap())
    }

    fn mime(resolved: &Resolved) -> Option<&str> {
        match resolved {
            Resolved::File { mime, .. } => Some(mime),
            _ => None,
        }
    }

    #[test]
    fn serves_files_indexes_and_listings() {
        let (_dir, capsule) = capsule();
        assert_eq!(
            mime(&resolve(&capsule, "/")),
            Some("text/gemini; charset=utf-8")
        );
        assert_eq!(
            mime(&resolve(&capsule, "/docs/a%20b.txt")),
            Some("text/plain")
        );
        assert_eq!(mime(&resolve(&capsule, "/docs/pic.png")), Some("image/png"));
        assert_eq!(
            resolve(&capsule, "/docs"),
            Resolved::Redirect("/docs/".into())
        );
        let Resolved::Listing {
            body: listing,
            canonical,
        } = resolve(&capsule, "/docs/")
        else {
            panic!("expected a listing");
        };
        assert_eq!(canonical, "/docs/");
        assert!(listing.contains("=> a%20b.txt a b.txt\n"), "{listing}");
        assert!(listing.contains("=> ../ ..\n"));
        assert_eq!(
            mime(&resolve(&capsule, "/inside.gmi")),
            Some("text/gemini; charset=utf-8")
        );
    }

    #[test]
    fn what_is_served_comes_with_its_own_canonical_path() {
        let (_dir, capsule) = capsule();
        let served = |raw: &str| {
            resolve(&capsule, raw)
                .served()
                .map(|p| p.as_str().to_owned())
        };
        assert_eq!(served("/").as_deref(), Some("/index.gmi"));
        assert_eq!(
            served("/docs/a%20b.txt").as_deref(),
            Some("/docs/a%20b.txt")
        );
        // A symbolic link inside the root serves its target's path.
        assert_eq!(served("/inside.gmi").as_deref(), Some("/index.gmi"));
        assert_eq!(served("/empty/").as_deref(), Some("/empty/"));
        assert_eq!(served("/docs"), None);
        assert_eq!(served("/missing"), None);
    }

    #[test]
    fn never_leaves_the_root() {
        let (_dir, capsule) = capsule();
        for path in [
            "/escape.gmi",
            "/up/outside.gmi",
            "/up/",
            "/.secret",
            "/%2esecret",
            "/..%2Foutside.gmi",
            "/docs%2F..%2F..%2Foutside.gmi",
            "/missing",
            "/index.gmi%00.png",
        ] {
            assert_eq!(resolve(&capsule, path), Resolved::NotFound, "{path}");
        }
    }

    proptest::proptest! {
        /// No request line, however it spells its path (dot segments,
        /// escapes, encoded separators, links in the tree), makes the
        /// capsule read or list anything outside its root.
        #[test]
        fn no_request_line_reads_outside_the_root(
            segments in proptest::collection::vec(
                "\\.\\.|\\.|%2[eEfF]|%2e%2e|%00|%5[cC]|up|escape\\.gmi|inside\\.gmi|docs|outside\\.gmi|index\\.gmi|\\.secret|[a-z/%.]{0,6}",
                0..6,
            ),
            trailing in proptest::bool::ANY,
        ) {
            let (dir, capsule) = capsule();
            let root = dir.path().join("root").canonicalize().unwrap();
            let mut line = format!("gemini://localhost/{}", segments.join("/"));
            if trailing {
                line.push('/');
            }
            if let Ok(request) = crate::request::parse_request(line.as_bytes()) {
                match capsule.resolve(&request.path) {
                    Resolved::File { path, .. } => {
                        proptest::prop_assert!(path.starts_with(&root), "{line} -> {}", path.display());
                    }
                    Resolved::Listing { body, .. } => {
                        proptest::prop_assert!(!body.contains("outside"), "{line}");
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn listings_can_be_turned_off() {
        let (dir, _) = capsule();
        let capsule = Capsule::new(&dir.path().join("root"), "text/gemini".into(), false).unwrap();
        assert_eq!(resolve(&capsule, "/empty/"), Resolved::NotFound);
    }
}
