//! Maps with structured keys (a `ServiceKey`, say) as JSON: a list of `{key, value}` entries,
//! since JSON object keys can only be strings.

use std::collections::BTreeMap;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Entry<K, V> {
    key: K,
    value: V,
}

pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
    map: &BTreeMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.iter().map(|(key, value)| Entry { key, value }))
}

pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let entries: Vec<Entry<K, V>> = Vec::deserialize(d)?;
    Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
}
