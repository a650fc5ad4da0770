//! Cluster objects from manifest files: `*.yaml`, `*.yml` and `*.json` under a
//! directory, multi-document YAML and `kind: List` included, re-read when they change.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use crate::cluster::{self, ClusterObject};
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

/// Every object of every manifest under `dir`, or every problem found.
pub fn load_dir(dir: &Path) -> Result<Vec<ClusterObject>, Vec<ManifestError>> {
    let files = manifest_files(dir).map_err(|source| {
        vec![ManifestError::Read {
            path: dir.to_path_buf(),
            source,
        }]
    })?;
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_file(&path, &text) {
                Ok(found) => objects.extend(found),
                Err(found) => errors.extend(found),
            },
            Err(source) => errors.push(ManifestError::Read { path, source }),
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(errors)
    }
}

/// Manifest files under `dir`, recursively, sorted. Hidden entries are skipped:
/// editors' swap files, and the `..data` twins of a ConfigMap volume.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
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
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(path);
            } else if is_manifest(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Splits YAML text into documents at `---` lines, with each one's 1-based start line.
fn yaml_documents(text: &str) -> Vec<(usize, String)> {
    let mut documents: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let is_marker =
            line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "...";
        if is_marker {
            documents.push((start, std::mem::take(&mut current)));
            start = index + 1;
            if let Some(rest) = line.strip_prefix("---") {
                current.push_str(rest);
                current.push('\n');
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.push((start, current));
    documents
}

/// Parses one manifest file's text into objects (pure: no I/O).
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<ClusterObject>, Vec<ManifestError>> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
    let documents = if is_json {
        vec![(1, text.to_string())]
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
        let seed = DocumentSeed { out: &mut objects };
        let parsed: Result<Outcome, String> = if is_json {
            let mut deserializer = serde_json::Deserializer::from_str(&body);
            serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
                .and_then(|result| deserializer.end().map(|()| result))
                .map_err(|e| e.to_string())
        } else {
            serde_saphyr::with_deserializer_from_str(&body, |deserializer| {
                serde::de::DeserializeSeed::deserialize(seed, deserializer)
            })
            .map_err(|e| e.to_string())
        };
        match parsed {
            Ok(Ok(())) => {}
            Ok(Err((item, reason))) => errors.push(error(item, reason)),
            Err(reason) => errors.push(error(String::new(), reason)),
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(errors)
    }
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
    out: &'a mut Vec<ClusterObject>,
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
    out: &'a mut Vec<ClusterObject>,
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
    out: &mut Vec<ClusterObject>,
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
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Service") => {
            let service: Service = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::Service(cluster::service_info(&service).map_err(|e| bad(&e))?)
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let slice: EndpointSlice = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::EndpointSlice(cluster::endpoint_slice_info(&slice).map_err(|e| bad(&e))?)
        }
        ("v1", "Pod") => {
            let pod: Pod = serde_json::from_value(value).map_err(|e| bad(&e))?;
            ClusterObject::Pod(cluster::pod_info(&pod).map_err(|e| bad(&e))?)
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
    out.push(object);
    Ok(())
}

/// What identifies the directory's state: every manifest's path, size, mtime and inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>, u64)>);

pub fn fingerprint(dir: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let files = manifest_files(dir).unwrap_or_default();
    Fingerprint(
        files
            .into_iter()
            .map(|path| match std::fs::metadata(&path) {
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

/// Loads the directory into a fresh index snapshot and publishes it, returning
/// the number of objects. On any error the previous snapshot stays.
pub fn reload(
    dir: &Path,
    shared: &SharedSnapshot,
    previous_serial: u32,
) -> Result<usize, Vec<ManifestError>> {
    let (mut snapshot, count) = snapshot(dir)?;
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

/// The records of every manifest under `dir`, and how many objects they came from.
pub fn snapshot(dir: &Path) -> Result<(Snapshot, usize), Vec<ManifestError>> {
    let objects = load_dir(dir)?;
    let count = objects.len();
    let snapshot = IndexWriter::from_objects(objects).snapshot();
    crate::index::release_freed_memory();
    Ok((snapshot, count))
}

/// Polls the directory and reloads it whenever a manifest is added, changed or removed.
/// Polling (rather than inotify) also sees a ConfigMap volume's symlink swap.
/// `loaded` is the fingerprint taken just before the records being served were read.
pub async fn watch(dir: PathBuf, interval: Duration, shared: SharedSnapshot, loaded: Fingerprint) {
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
            tokio::task::spawn_blocking(move || reload(&dir_for_load, &shared, serial)).await;
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
        let objects = load_dir(dir.path()).expect("loads");
        assert_eq!(objects.len(), 1, "each file read once");
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
}
