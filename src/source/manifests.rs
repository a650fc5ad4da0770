//! Cluster objects from manifest files: `*.yaml`, `*.yml` and `*.json` under a
//! directory, multi-document YAML and `kind: List` included, re-read when they change.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::cluster::EndpointOptions;
use crate::cluster::{self, ClusterObject, Kind, ObjectRef};
use crate::index::{IndexWriter, SharedSnapshot, Snapshot};

/// A manifest that could not be used, with enough detail to find and fix it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: document {document} (line {line}){item}: {reason}", path.display())]
    Document {
        path: PathBuf,
        /// 1-based position of the YAML document in the file.
        document: usize,
        /// Line where the document starts.
        line: usize,
        /// `, items[3]` inside a List, else empty.
        item: String,
        reason: String,
    },
}

/// Something in a manifest that was skipped or ignored while the rest was used:
/// logged (once) rather than failing the load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestWarning {
    pub path: PathBuf,
    /// Where in the file (when in one), what and why.
    pub message: String,
}

impl std::fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// What manifests hold: the objects to serve and what was skipped on the way.
#[derive(Debug, Default)]
pub struct Manifests {
    pub objects: Vec<ClusterObject>,
    pub warnings: Vec<ManifestWarning>,
}

/// The largest manifest file read. Bigger is an error: a file that size is a
/// mistake, not a cluster, and reading it would hold all of it in memory.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// Every object of every manifest under `dir`, or every problem found.
/// Files are read in sorted path order; when an object is defined twice, the
/// copy read last is served (and a warning says so).
pub fn load_dir(dir: &Path) -> Result<Manifests, Vec<ManifestError>> {
    let files = manifest_files(dir).map_err(|source| {
        vec![ManifestError::Read {
            path: dir.to_path_buf(),
            source,
        }]
    })?;
    let mut loaded = Manifests::default();
    let mut errors = Vec::new();
    // Where each object was first read, to name both files of a duplicate.
    let mut origin: HashMap<ObjectRef, usize> = HashMap::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (path, metadata) in files {
        let skipped = |why: String| ManifestWarning {
            path: path.clone(),
            message: format!("{why}; skipped"),
        };
        let text = match metadata {
            Err(error) => {
                loaded
                    .warnings
                    .push(skipped(format!("cannot stat: {error}")));
                continue;
            }
            Ok(metadata) if !metadata.is_file() => {
                loaded.warnings.push(skipped(not_regular(&metadata)));
                continue;
            }
            Ok(_) => match read_manifest(&path) {
                Ok(FileText::Text(text)) => text,
                Ok(FileText::NotRegular(why)) => {
                    loaded.warnings.push(skipped(why));
                    continue;
                }
                Err(source) => {
                    errors.push(ManifestError::Read { path, source });
                    continue;
                }
            },
        };
        match parse_file_with_warnings(&path, &text) {
            Ok(found) => {
                let file = paths.len();
                for object in &found.objects {
                    let object_ref = object.object_ref();
                    // A namespace carries only its name: two copies cannot differ.
                    if object_ref.kind == Kind::Namespace {
                        continue;
                    }
                    if let Some(first) = origin.insert(object_ref.clone(), file) {
                        let message = if first == file {
                            format!(
                                "{object_ref} is defined twice in this file; \
                                 the later copy is served"
                            )
                        } else {
                            format!(
                                "{object_ref} is also defined in {}; this copy is served \
                                 (the last file in path order wins)",
                                paths[first].display()
                            )
                        };
                        loaded.warnings.push(ManifestWarning {
                            path: path.clone(),
                            message,
                        });
                    }
                }
                paths.push(path);
                loaded.objects.extend(found.objects);
                loaded.warnings.extend(found.warnings);
            }
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

/// A manifest file's text, or why it is not a file to read.
enum FileText {
    Text(String),
    NotRegular(String),
}

/// Reads a regular file of at most [`MAX_MANIFEST_BYTES`]. Opened without
/// blocking and checked again once open, so a FIFO (or a device) put in place of
/// the file after it was listed is skipped instead of blocking the reader forever.
fn read_manifest(path: &Path) -> std::io::Result<FileText> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Ok(FileText::NotRegular(not_regular(&metadata)));
    }
    let too_large = || {
        std::io::Error::other(format!(
            "larger than {} MiB, the most a manifest file may hold",
            MAX_MANIFEST_BYTES / (1024 * 1024)
        ))
    };
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    // Bounded again while reading: the file may grow after the check.
    let mut text = String::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    Ok(FileText::Text(text))
}

/// Why a path that is not a regular file is not read.
fn not_regular(metadata: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    };
    format!("not a regular file ({what})")
}

/// Manifest paths under `dir`, recursively, sorted, each with its metadata
/// (symlinks followed; never opened, so a FIFO cannot block the listing).
/// Hidden entries are skipped: editors' swap files, and the `..data` twins of a
/// ConfigMap volume.
type Listing = Vec<(PathBuf, std::io::Result<std::fs::Metadata>)>;

fn manifest_files(dir: &Path) -> std::io::Result<Listing> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Symlinks are followed, so remember where we have been: `ln -s . loop` must not loop.
    let mut visited: HashSet<PathBuf> = HashSet::new();
    while let Some(current) = pending.pop() {
        let real = std::fs::canonicalize(&current)?;
        if !visited.insert(real) {
            continue;
        }
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follows symlinks, as a ConfigMap volume needs.
            let metadata = std::fs::metadata(&path);
            if metadata.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
                pending.push(path);
            } else if is_manifest(&path) {
                files.push((path, metadata));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// YAML parser limits for a document of `len` bytes. Plain YAML has at most
/// about one node, two events and one scalar byte per input byte, so limits
/// that grow with the input let a `kind: List` of any size (up to
/// [`MAX_MANIFEST_BYTES`]) through, while memory stays bounded by one item (the
/// items are streamed). Only aliases can make more than the input holds: the
/// alias-replay limits stay at serde-saphyr's defaults, which refuse alias bombs.
fn yaml_options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    let slack = 1024;
    budget.max_events = budget.max_events.max(len.saturating_mul(2) + slack);
    budget.max_nodes = budget.max_nodes.max(len + slack);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len + slack);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Splits YAML text into documents at `---` lines, with each one's 1-based start
/// line. The documents borrow the text: a large file is not held twice.
fn yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 1;
    let mut document_start = 0;
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let is_marker =
            line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "...";
        if is_marker {
            documents.push((start, &text[document_start..offset]));
            start = index + 1;
            // What follows `---` on its line belongs to the next document.
            document_start = if line.starts_with("---") {
                offset + 3
            } else {
                offset + raw.len()
            };
        }
        offset += raw.len();
    }
    documents.push((start, &text[document_start..]));
    documents
}

/// Parses one manifest file's text into objects (pure: no I/O). Warnings (values
/// ignored, objects dropped) are left out: see [`parse_file_with_warnings`].
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<ClusterObject>, Vec<ManifestError>> {
    parse_file_with_warnings(path, text).map(|found| found.objects)
}

/// Parses one manifest file's text (YAML, or JSON for a `.json` path) into the
/// objects to serve and the warnings about what was left out (pure: no I/O).
pub fn parse_file_with_warnings(path: &Path, text: &str) -> Result<Manifests, Vec<ManifestError>> {
    let mut found = Found::default();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
    let documents = if is_json {
        vec![(1, text)]
    } else {
        yaml_documents(text)
    };
    let mut number = 0;
    for (line, body) in documents {
        if body.trim().is_empty() {
            continue;
        }
        number += 1;
        let error = |item: String, reason: String| ManifestError::Document {
            path: path.to_path_buf(),
            document: number,
            line,
            item,
            reason,
        };
        // Streamed: a List's items are converted one at a time, so a large cluster
        // never exists as one parsed tree next to its compact form.
        let seed = DocumentSeed { out: &mut found };
        let parsed: Result<Outcome, String> = if is_json {
            let mut deserializer = serde_json::Deserializer::from_str(body);
            serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
                .and_then(|result| deserializer.end().map(|()| result))
                .map_err(|e| e.to_string())
        } else {
            serde_saphyr::with_deserializer_from_str_with_options(
                body,
                yaml_options(body.len()),
                |deserializer| serde::de::DeserializeSeed::deserialize(seed, deserializer),
            )
            .map_err(|e| e.to_string())
        };
        match parsed {
            Ok(Ok(())) => {}
            Ok(Err((item, reason))) => errors.push(error(item, reason)),
            Err(reason) => errors.push(error(String::new(), reason)),
        }
        warnings.extend(found.notes.drain(..).map(|(item, note)| ManifestWarning {
            path: path.to_path_buf(),
            message: format!("document {number} (line {line}){item}: {note}"),
        }));
    }
    if errors.is_empty() {
        Ok(Manifests {
            objects: found.objects,
            warnings,
        })
    } else {
        Err(errors)
    }
}

/// What the readers collect: the objects, and (item, note) for each thing left out.
#[derive(Default)]
struct Found {
    objects: Vec<ClusterObject>,
    notes: Vec<(String, String)>,
}

/// What reading a document (or a List's items) found: nothing wrong, or the
/// (item, reason) of the first problem.
type Outcome = Result<(), (String, String)>;

/// A seed that is its own visitor, as both document readers are.
macro_rules! seed_is_visitor {
    ($seed:ty) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $seed {
            type Value = Outcome;

            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                deserializer.deserialize_any(self)
            }
        }
    };
}

/// Visitor methods shared by both readers: nothing (`null`, an empty document) is
/// fine; a scalar where a mapping or a list belongs rejects the document with the
/// visitor's own reason (its `rejected` method), not with a parse error.
macro_rules! empty_ok_scalars_rejected {
    () => {
        type Value = Outcome;

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Ok(()))
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Ok(()))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Err(self.rejected()))
        }

        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Err(self.rejected()))
        }

        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Err(self.rejected()))
        }

        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Err(self.rejected()))
        }

        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Err(self.rejected()))
        }
    };
}

/// Reads one document. A List whose `apiVersion` and `kind` come before its
/// `items` (as every tool writes them) has its items converted as they are read;
/// anything else is read whole and converted by [`collect_typed`].
struct DocumentSeed<'a> {
    out: &'a mut Found,
}

seed_is_visitor!(DocumentSeed<'_>);

impl<'de> serde::de::Visitor<'de> for DocumentSeed<'_> {
    empty_ok_scalars_rejected!();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut streamed: Option<Outcome> = None;
        while let Some(key) = map.next_key::<String>()? {
            let list_kind = fields
                .get("kind")
                .and_then(Value::as_str)
                .filter(|kind| kind.ends_with("List"));
            let api_version = fields
                .get("apiVersion")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty());
            if key == "items" && streamed.is_some() {
                map.next_value::<serde::de::IgnoredAny>()?;
                streamed = Some(Err((String::new(), "items appears twice".into())));
            } else if key == "items"
                && let (Some(kind), Some(api_version)) = (list_kind, api_version)
            {
                let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
                let items = ItemsSeed {
                    kind,
                    implied: item_kind.map(|k| (api_version, k)),
                    out: &mut *self.out,
                };
                streamed = Some(map.next_value_seed(items)?);
            } else {
                let value: Value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        match streamed {
            // The List's other fields (metadata) carry nothing DNS uses.
            Some(result) => Ok(result),
            None => Ok(collect_typed(
                Value::Object(fields),
                String::new(),
                None,
                self.out,
            )),
        }
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Err(self.rejected()))
    }
}

impl DocumentSeed<'_> {
    fn rejected(&self) -> (String, String) {
        (String::new(), NOT_AN_OBJECT.into())
    }
}

const NOT_AN_OBJECT: &str = "not a Kubernetes object: expected a mapping with apiVersion and kind";

/// A List's `items`, each converted as soon as it is read. After the first bad
/// item the rest are only read past (the document is rejected as a whole).
struct ItemsSeed<'a, 'k> {
    kind: &'k str,
    implied: Option<(&'k str, &'k str)>,
    out: &'a mut Found,
}

seed_is_visitor!(ItemsSeed<'_, '_>);

impl<'de> serde::de::Visitor<'de> for ItemsSeed<'_, '_> {
    empty_ok_scalars_rejected!();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut result = Ok(());
        let mut index = 0;
        while let Some(entry) = seq.next_element::<Value>()? {
            if result.is_ok() {
                result = collect_typed(entry, format!(", items[{index}]"), self.implied, self.out);
            }
            index += 1;
        }
        Ok(result)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Err(self.rejected()))
    }
}

impl ItemsSeed<'_, '_> {
    fn rejected(&self) -> (String, String) {
        (String::new(), format!("{}: items is not a list", self.kind))
    }
}

/// `implied`: the (apiVersion, kind) of the items of a typed list such as
/// `ServiceList`, whose items may omit them (as the API server's lists do).
fn collect_typed(
    value: Value,
    item: String,
    implied: Option<(&str, &str)>,
    out: &mut Found,
) -> Result<(), (String, String)> {
    let Value::Object(mut map) = value else {
        if value.is_null() {
            return Ok(());
        }
        return Err((item, NOT_AN_OBJECT.into()));
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let mut api_version = text(map.get("apiVersion"));
    let mut kind = text(map.get("kind"));
    if let Some((implied_version, implied_kind)) = implied {
        if api_version.is_empty() {
            api_version = implied_version.to_string();
        }
        if kind.is_empty() {
            kind = implied_kind.to_string();
        }
    }
    if kind.is_empty() || api_version.is_empty() {
        // Not a Kubernetes object (a Helm Chart.yaml, a values file): not ours to judge.
        tracing::debug!(item, "skipping a document without apiVersion and kind");
        return Ok(());
    }
    if kind == "List" || kind.ends_with("List") {
        let items = match map.remove("items") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err((item, format!("{kind}: items is not a list"))),
        };
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        let implied = item_kind.map(|k| (api_version.as_str(), k));
        for (index, entry) in items.into_iter().enumerate() {
            collect_typed(entry, format!("{item}, items[{index}]"), implied, out)?;
        }
        return Ok(());
    }
    let value = Value::Object(map);
    let bad = |e: &dyn std::fmt::Display| (item.clone(), format!("{kind}: {e}"));
    let mut notes = Vec::new();
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => {
            let service: Service = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::Service(
                cluster::service_info_noting(&service, &mut notes).map_err(|e| bad(&e))?,
            )
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let slice: EndpointSlice = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::EndpointSlice(
                cluster::endpoint_slice_info_noting(&slice, &mut notes).map_err(|e| bad(&e))?,
            )
        }
        ("v1", "Pod") => {
            let pod: Pod = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::Pod(cluster::pod_info_noting(&pod, &mut notes).map_err(|e| bad(&e))?)
        }
        ("v1", "Namespace") => {
            let namespace: Namespace = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::Namespace(cluster::namespace_name(&namespace).map_err(|e| bad(&e))?)
        }
        _ => {
            tracing::debug!(api_version, kind, "skipping an object DNS does not use");
            return Ok(());
        }
    };
    let object_ref = object.object_ref();
    for note in notes {
        out.notes
            .push((item.clone(), format!("{object_ref}: {note}")));
    }
    // A name DNS cannot carry would never answer: say so instead of keeping it.
    if let Some(problem) = unservable_name(&object_ref) {
        out.notes
            .push((item, format!("{object_ref}: {problem}; not served")));
        return Ok(());
    }
    out.objects.push(object);
    Ok(())
}

/// Why an object's name cannot appear in DNS names, if so. Service and namespace
/// names are labels of `<service>.<namespace>.svc.<zone>`; slice and pod names
/// never appear (endpoints answer by hostname or address, pods by address).
fn unservable_name(object: &ObjectRef) -> Option<String> {
    let namespace = || {
        cluster::dns_label_problem(&object.namespace).map(|problem| format!("namespace {problem}"))
    };
    match object.kind {
        Kind::Service => cluster::dns_label_problem(&object.name).or_else(namespace),
        Kind::EndpointSlice | Kind::Pod | Kind::Namespace => namespace(),
    }
}

/// What identifies the directory's state: every manifest's path, size, mtime and
/// inode, from `stat` alone (a FIFO is never opened here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>, u64)>);

pub fn fingerprint(dir: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let files = manifest_files(dir).unwrap_or_default();
    Fingerprint(
        files
            .into_iter()
            .map(|(path, metadata)| match metadata {
                Ok(m) => (path, m.len(), m.modified().ok(), m.ino()),
                Err(_) => (path, 0, None, 0),
            })
            .collect(),
    )
}

/// Logs every problem, one line each.
pub fn report(errors: &[ManifestError]) {
    for error in errors {
        tracing::error!("{error}");
    }
}

/// The warnings of the last load, so a reload only logs what is new: a file's
/// problems are told once, not again at every unrelated edit.
static LAST_WARNINGS: std::sync::LazyLock<std::sync::Mutex<HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

fn log_new_warnings(warnings: &[ManifestWarning]) {
    let current: HashSet<String> = warnings.iter().map(ToString::to_string).collect();
    let mut last = LAST_WARNINGS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // In file order, as they were found.
    let mut logged = HashSet::new();
    for warning in warnings {
        let text = warning.to_string();
        if !last.contains(&text) && logged.insert(text.clone()) {
            tracing::warn!("{text}");
        }
    }
    *last = current;
}

/// Loads the directory into a fresh index snapshot and publishes it, returning
/// the number of objects. On any error the previous snapshot stays.
pub fn reload(
    dir: &Path,
    shared: &SharedSnapshot,
    previous_serial: u32,
    endpoints: EndpointOptions,
) -> Result<usize, Vec<ManifestError>> {
    let (mut snapshot, count) = snapshot(dir, endpoints)?;
    snapshot.serial = snapshot.serial.max(previous_serial.wrapping_add(1));
    tracing::info!(
        dir = %dir.display(),
        objects = count,
        services = snapshot.service_count(),
        "loaded manifests"
    );
    shared.store(std::sync::Arc::new(snapshot));
    Ok(count)
}

/// The records of every manifest under `dir`, and how many objects they came
/// from. What was skipped is logged (once; see [`log_new_warnings`]).
pub fn snapshot(
    dir: &Path,
    endpoints: EndpointOptions,
) -> Result<(Snapshot, usize), Vec<ManifestError>> {
    let loaded = load_dir(dir)?;
    log_new_warnings(&loaded.warnings);
    let count = loaded.objects.len();
    let snapshot = IndexWriter::from_objects_with(loaded.objects, endpoints).snapshot();
    crate::index::release_freed_memory();
    Ok((snapshot, count))
}

/// Polls the directory and reloads it whenever a manifest is added, changed or removed.
/// Polling (rather than inotify) also sees a ConfigMap volume's symlink swap.
/// `loaded` is the fingerprint taken just before the records being served were read.
pub async fn watch(
    dir: PathBuf,
    (interval, endpoints): (Duration, EndpointOptions),
    shared: SharedSnapshot,
    loaded: Fingerprint,
) {
    let mut seen = loaded;
    // Problems already logged: an unrelated edit elsewhere does not repeat them.
    let mut reported: HashSet<String> = HashSet::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let dir_for_scan = dir.clone();
        let Ok(current) = tokio::task::spawn_blocking(move || fingerprint(&dir_for_scan)).await
        else {
            continue;
        };
        if current == seen {
            continue;
        }
        seen = current;
        tracing::info!(dir = %dir.display(), "manifests changed, reloading");
        let dir_for_load = dir.clone();
        let shared = shared.clone();
        let serial = shared.load().serial;
        let result =
            tokio::task::spawn_blocking(move || reload(&dir_for_load, &shared, serial, endpoints))
                .await;
        match result {
            Ok(Ok(_)) => reported.clear(),
            Ok(Err(errors)) => {
                let messages: HashSet<String> = errors.iter().map(ToString::to_string).collect();
                for message in &messages {
                    if !reported.contains(message) {
                        tracing::error!("{message}");
                    }
                }
                if messages != reported {
                    tracing::warn!(dir = %dir.display(), "keeping the last good records");
                }
                reported = messages;
            }
            Err(error) => {
                tracing::error!(%error, dir = %dir.display(), "reload failed; keeping the last good records");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ClusterObject>, Vec<ManifestError>> {
        parse_file(Path::new("test.yaml"), text)
    }

    #[test]
    fn multi_document_yaml_and_lists() {
        let objects = parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: None}\n---\n\
             ---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: team}\n\
             - apiVersion: apps/v1\n  kind: StatefulSet\n  metadata: {name: web}\n",
        )
        .expect("parses");
        assert_eq!(objects.len(), 2);
        assert!(matches!(&objects[0], ClusterObject::Service(s) if &*s.name == "a"));
        assert!(matches!(&objects[1], ClusterObject::Namespace(n) if &**n == "team"));
    }

    #[test]
    fn documents_split_at_markers_keep_what_follows_them() {
        let text = "--- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\r\n...\r\n\
                    apiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: b}\r\n---\r\n\
                    apiVersion: v1\nkind: Namespace\nmetadata: {name: [\n";
        assert_eq!(
            yaml_documents(text),
            [
                (1, ""),
                (
                    1,
                    " {apiVersion: v1, kind: Namespace, metadata: {name: a}}\r\n"
                ),
                (
                    2,
                    "apiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: b}\r\n"
                ),
                (
                    6,
                    "\r\napiVersion: v1\nkind: Namespace\nmetadata: {name: [\n"
                ),
            ]
        );
        let errors = parse(text).expect_err("the third is broken");
        assert!(
            errors[0]
                .to_string()
                .starts_with("test.yaml: document 3 (line 6): "),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn errors_name_file_document_line_and_reason() {
        let errors = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: eighty}]}\n",
        )
        .expect_err("second document is bad");
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(
            text.starts_with("test.yaml: document 2 (line 4): Service:"),
            "{text}"
        );
        assert!(
            text.contains("eighty") || text.contains("invalid"),
            "{text}"
        );
    }

    #[test]
    fn yaml_syntax_errors_are_reported_not_panicked() {
        let errors = parse("apiVersion: v1\nkind: Service\nmetadata: {name: [\n").expect_err("bad");
        assert!(errors[0].to_string().contains("test.yaml: document 1"));
        let errors = parse("- just\n- a list\n").expect_err("not an object");
        assert!(errors[0].to_string().contains("not a Kubernetes object"));
        // A YAML file that is not a Kubernetes object at all is skipped, not an error.
        assert_eq!(
            parse("name: my-chart\nversion: 1.0.0\n")
                .expect("skipped")
                .len(),
            0
        );
    }

    #[test]
    fn list_items_are_located() {
        let errors = parse(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n\
             - apiVersion: v1\n  kind: Pod\n  metadata: {namespace: x}\n",
        )
        .expect_err("second pod has no name");
        assert!(
            errors[0]
                .to_string()
                .contains("document 1 (line 1), items[1]: Pod: Pod has no metadata.name"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn typed_lists_imply_their_items_kind() {
        let objects = parse(
            "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: a, namespace: x}\n  spec: {clusterIP: None}\n",
        )
        .expect("parses");
        assert!(matches!(&objects[0], ClusterObject::Service(s) if &*s.name == "a"));
    }

    #[test]
    fn symlink_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ns.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
        std::os::unix::fs::symlink(".", dir.path().join("again")).unwrap();
        let loaded = load_dir(dir.path()).expect("loads");
        assert_eq!(loaded.objects.len(), 1, "each file read once");
    }

    #[test]
    fn json_files_parse() {
        let objects = parse_file(
            Path::new("x.json"),
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}"#,
        )
        .expect("parses");
        assert_eq!(objects.len(), 1);
    }

    #[test]
    fn json_lists_read_the_same_whatever_the_key_order() {
        let items = r#"[{"metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]"#;
        for text in [
            format!(r#"{{"apiVersion":"v1","kind":"NamespaceList","items":{items}}}"#),
            format!(r#"{{"items":{items},"kind":"NamespaceList","apiVersion":"v1"}}"#),
        ] {
            let objects = parse_file(Path::new("x.json"), &text).expect("parses");
            assert_eq!(
                objects,
                vec![
                    ClusterObject::Namespace("a".into()),
                    ClusterObject::Namespace("b".into())
                ],
                "{text}"
            );
        }
    }

    #[test]
    fn odd_json_lists_are_read_as_before() {
        let twice = r#"{"apiVersion":"v1","kind":"NamespaceList","items":[{"metadata":{"name":"a"}}],"items":[]}"#;
        let errors = parse_file(Path::new("x.json"), twice).expect_err("items twice");
        assert!(
            errors[0].to_string().contains("items appears twice"),
            "{}",
            errors[0]
        );
        let unversioned =
            r#"{"apiVersion":"","kind":"NamespaceList","items":[{"metadata":{"name":"a"}}]}"#;
        assert_eq!(
            parse_file(Path::new("x.json"), unversioned).expect("skipped"),
            vec![]
        );
    }

    #[test]
    fn scalar_and_empty_documents() {
        assert_eq!(parse("# only a comment\n").expect("empty is fine"), vec![]);
        let errors = parse("just text\n").expect_err("a scalar is not an object");
        assert!(
            errors[0].to_string().contains("not a Kubernetes object"),
            "{}",
            errors[0]
        );
        let errors =
            parse("apiVersion: v1\nkind: List\nitems: 5\n").expect_err("items is a number");
        assert!(
            errors[0].to_string().contains("List: items is not a list"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_bad_streamed_item_rejects_its_document_and_names_it() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ok"}},
            {"apiVersion":"v1","kind":"Namespace","metadata":{}},
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"after"}}]}"#;
        let errors = parse_file(Path::new("x.json"), text).expect_err("item 1 has no name");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .contains("x.json: document 1 (line 1), items[1]: Namespace"),
            "{}",
            errors[0]
        );
        let errors = parse_file(
            Path::new("x.json"),
            r#"{"apiVersion":"v1","kind":"List","items":{"a":1}}"#,
        )
        .expect_err("items is a map");
        assert!(
            errors[0].to_string().contains("List: items is not a list"),
            "{}",
            errors[0]
        );
        let errors = parse_file(
            Path::new("x.json"),
            r#"{"apiVersion":"v1","kind":"List","items":[]} trailing"#,
        )
        .expect_err("trailing garbage");
        assert!(
            errors[0].to_string().contains("x.json: document 1"),
            "{}",
            errors[0]
        );
    }
    /// One Service as `kubectl get svc -A -o yaml` lists it: about 64 YAML nodes,
    /// so 3,906 of them used to exhaust serde-saphyr's default 250,000-node budget.
    fn listed_service_yaml(i: usize) -> String {
        format!(
            "- apiVersion: v1\n  kind: Service\n  metadata:\n    annotations:\n      \
             kubectl.kubernetes.io/last-applied-configuration: |\n        {{\"kind\":\"Service\"}}\n    \
             creationTimestamp: \"2026-11-30T10:00:00Z\"\n    labels:\n      app: svc-{i}\n      team: payments\n    \
             name: svc-{i}\n    namespace: ns-{ns}\n    resourceVersion: \"{i}\"\n    uid: 0b7c-{i}\n  spec:\n    \
             clusterIP: {ip}\n    clusterIPs:\n    - {ip}\n    internalTrafficPolicy: Cluster\n    ipFamilies:\n    \
             - IPv4\n    ipFamilyPolicy: SingleStack\n    ports:\n    - name: http\n      port: 80\n      \
             protocol: TCP\n      targetPort: 8080\n    selector:\n      app: svc-{i}\n    sessionAffinity: None\n    \
             type: ClusterIP\n  status:\n    loadBalancer: {{}}\n",
            ns = i % 50,
            ip = listed_ip(i),
        )
    }

    fn listed_ip(i: usize) -> String {
        format!("10.96.{}.{}", i / 250, i % 250 + 1)
    }

    fn listed_service_json(i: usize) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 50),
                         "labels": {"app": format!("svc-{i}")}, "resourceVersion": i.to_string()},
            "spec": {"clusterIP": listed_ip(i), "clusterIPs": [listed_ip(i)],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                     "type": "ClusterIP"}
        })
    }

    fn assert_all_services(objects: &[ClusterObject], count: usize) {
        assert_eq!(objects.len(), count);
        let last = count - 1;
        match &objects[last] {
            ClusterObject::Service(s) => {
                assert_eq!(&*s.name, format!("svc-{last}"));
                assert_eq!(
                    s.kind,
                    cluster::ServiceKind::ClusterIp(vec![listed_ip(last).parse().unwrap()])
                );
            }
            other => panic!("not a service: {other:?}"),
        }
    }

    #[test]
    fn a_list_of_5000_services_loads_fully_in_yaml_and_json() {
        let count = 5_000;
        let mut yaml = String::from(
            "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n",
        );
        for i in 0..count {
            yaml.push_str(&listed_service_yaml(i));
        }
        let objects = parse(&yaml).expect("a large List is read whole");
        assert_all_services(&objects, count);

        let items: Vec<serde_json::Value> = (0..count).map(listed_service_json).collect();
        let json = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let objects =
            parse_file(Path::new("x.json"), &json.to_string()).expect("a large JSON List");
        assert_all_services(&objects, count);
    }

    #[test]
    fn a_yaml_alias_bomb_is_refused_with_a_clear_error() {
        // Billion laughs: each level holds ten aliases of the one before, 10^9 strings
        // in the end, inside an item of a List (the streamed path).
        let mut yaml = String::from(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  \
             metadata: {name: lol}\n  data:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        );
        for level in 1..10 {
            let previous = format!("*l{}", level - 1);
            let aliases = [previous.as_str(); 10].join(", ");
            yaml.push_str(&format!("    l{level}: &l{level} [{aliases}]\n"));
        }
        let errors = parse(&yaml).expect_err("an alias bomb is refused");
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(
            text.starts_with("test.yaml: document 1 (line 1): "),
            "{text}"
        );
        assert!(text.contains("alias") || text.contains("budget"), "{text}");
        // The same bomb as a plain document, not a List.
        let plain = yaml
            .replace("apiVersion: v1\nkind: List\nitems:\n- ", "")
            .replace("\n  ", "\n");
        let errors = parse(&plain).expect_err("refused outside a List too");
        let text = errors[0].to_string();
        assert!(text.contains("alias") || text.contains("budget"), "{text}");
        // The limits that grow with the input do not let a bomb in a big file through:
        // alias expansion keeps its own fixed limits.
        let padded = format!("{yaml}# {}\n", "x".repeat(300_000));
        let errors = parse(&padded).expect_err("refused in a big file too");
        let text = errors[0].to_string();
        assert!(text.contains("budget breached"), "{text}");
    }

    #[test]
    fn invalid_values_and_names_are_warned_about_and_the_rest_kept() {
        let long = "a".repeat(300);
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: good, namespace: shop}}\n\
             spec: {{clusterIP: 10.96.0.1}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: {long}}}\nspec: {{clusterIP: 10.96.0.2}}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {{name: badip}}\nspec: {{clusterIP: 300.1.1.1}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: good-1, namespace: shop, labels: {{kubernetes.io/service-name: good}}}}\n\
             addressType: IPv4\nendpoints:\n- addresses: [10.1.0.1]\n- addresses: [10.1.0.999]\n"
        );
        let found = parse_file_with_warnings(Path::new("test.yaml"), &text).expect("parses");
        let warnings: Vec<String> = found.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(
            warnings[0].starts_with(&format!("test.yaml: document 2 (line 5): Service default/{long}: name is 300 characters long")),
            "{}", warnings[0]
        );
        assert!(warnings[0].ends_with("; not served"), "{}", warnings[0]);
        assert_eq!(
            warnings[1],
            "test.yaml: document 3 (line 10): Service default/badip: spec.clusterIP(s) \"300.1.1.1\" is not an IP address; ignored"
        );
        assert_eq!(
            warnings[2],
            "test.yaml: document 4 (line 15): EndpointSlice shop/good-1: endpoints[1].addresses \"10.1.0.999\" is not an IP address; ignored"
        );
        let names: Vec<String> = found
            .objects
            .iter()
            .map(|o| o.object_ref().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Service shop/good",
                "Service default/badip",
                "EndpointSlice shop/good-1"
            ]
        );
        assert!(
            matches!(&found.objects[2], ClusterObject::EndpointSlice(s) if s.endpoints.len() == 1)
        );
        // A namespace that is not a label is named as the reason.
        let found = parse_file_with_warnings(
            Path::new("ns.json"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"Bad_NS"}}"#,
        )
        .expect("parses");
        assert!(found.objects.is_empty());
        assert_eq!(
            found.warnings[0].to_string(),
            "ns.json: document 1 (line 1): Pod bad_ns/p: namespace name \"bad_ns\" is not a DNS label \
             (letters, digits and '-', starting and ending with a letter or digit); not served"
        );
    }

    fn service_yaml(name: &str, ip: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{clusterIP: {ip}}}\n"
        )
    }

    #[test]
    fn a_duplicate_is_warned_about_and_the_last_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), service_yaml("web", "10.96.0.1")).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(
            dir.path().join("b/web.yaml"),
            format!(
                "{}---\n{}",
                service_yaml("web", "10.96.0.2"),
                service_yaml("web", "10.96.0.3")
            ),
        )
        .unwrap();
        let loaded = load_dir(dir.path()).expect("loads");
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b/web.yaml");
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                format!(
                    "{}: Service default/web is also defined in {}; this copy is served (the last file in path order wins)",
                    b.display(),
                    a.display()
                ),
                format!(
                    "{}: Service default/web is defined twice in this file; the later copy is served",
                    b.display()
                ),
            ]
        );
        // Applied in order, the last copy is what the index keeps.
        let snapshot = IndexWriter::from_objects(loaded.objects).snapshot();
        let web = snapshot
            .services()
            .find(|s| &*s.name == "web")
            .expect("served");
        assert_eq!(
            &*web.addresses,
            ["10.96.0.3".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn fifos_and_devices_are_skipped_without_opening_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.yaml"),
            service_yaml("web", "10.96.0.1"),
        )
        .unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
        // Would block forever (or read without end) if either were opened for reading.
        let loaded = load_dir(dir.path()).expect("loads");
        assert_eq!(loaded.objects.len(), 1);
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                format!("{}: not a regular file (a FIFO); skipped", fifo.display()),
                format!(
                    "{}: not a regular file (a character device); skipped",
                    dir.path().join("zero.yaml").display()
                ),
            ]
        );
        // Change detection lists them by their metadata alone.
        assert_eq!(fingerprint(dir.path()).0.len(), 3);
        // A FIFO put in place after listing is caught when opened, still without blocking.
        assert!(matches!(read_manifest(&fifo), Ok(FileText::NotRegular(_))));
    }

    #[test]
    fn an_oversized_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yaml");
        // Sparse: nothing is written, only the size is set.
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
        let errors = load_dir(dir.path()).expect_err("too large");
        assert_eq!(
            errors[0].to_string(),
            format!(
                "{}: cannot read: larger than 256 MiB, the most a manifest file may hold",
                path.display()
            )
        );
    }
}
