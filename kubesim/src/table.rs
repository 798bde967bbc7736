//! `meta.k8s.io/v1` `Table` rendering, which `kubectl get` asks for: every kind gets
//! the `Name` and `Age` columns kube-apiserver gives custom resources without
//! `additionalPrinterColumns`.

use serde_json::{json, Value};

use crate::meta;
use crate::resource::ResourceType;

/// A Table of `items` at list version `rv`.
pub fn render(rt: &ResourceType, items: &[Value], rv: u64) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let age = meta::meta_str(item, "creationTimestamp")
                .parse::<jiff::Timestamp>()
                .map(|created| human_age(now.as_second() - created.as_second()))
                .unwrap_or_else(|_| "<unknown>".to_owned());
            json!({
                "cells": [meta::meta_str(item, "name"), age],
                "object": item,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            {
                "name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": format!("Name of the {}", rt.kind),
            },
            {
                "name": "Age", "type": "date", "format": "", "priority": 0,
                "description": "CreationTimestamp of the object",
            },
        ],
        "rows": rows,
    })
}

/// An age the way kubectl prints one: `45s`, `3m20s`, `5h`, `2d3h`, `1y20d`.
pub fn human_age(seconds: i64) -> String {
    if seconds < 0 {
        return "0s".to_owned();
    }
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    let with = |major: i64, unit: &str, minor: i64, minor_unit: &str| {
        if minor == 0 {
            format!("{major}{unit}")
        } else {
            format!("{major}{unit}{minor}{minor_unit}")
        }
    };
    match () {
        () if seconds < 120 => format!("{seconds}s"),
        () if minutes < 10 => with(minutes, "m", seconds % 60, "s"),
        () if minutes < 180 => format!("{minutes}m"),
        () if hours < 8 => with(hours, "h", minutes % 60, "m"),
        () if hours < 48 => format!("{hours}h"),
        () if hours < 192 => with(days, "d", hours % 24, "h"),
        () if days < 730 => format!("{days}d"),
        () if days < 2920 => with(days / 365, "y", days % 365, "d"),
        () => format!("{}y", days / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_name_age_and_object() {
        let rt = ResourceType::namespaced("", "v1", "Service", "services");
        let item =
            json!({"metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let table = render(&rt, std::slice::from_ref(&item), 7);
        assert_eq!(table["rows"][0]["cells"][0], "web");
        assert!(table["rows"][0]["cells"][1]
            .as_str()
            .is_some_and(|age| age.ends_with('d') || age.ends_with('y')));
        assert_eq!(table["rows"][0]["object"], item);
        assert_eq!(table["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(45), "45s");
        assert_eq!(human_age(200), "3m20s");
        assert_eq!(human_age(3600 * 5), "5h");
        assert_eq!(human_age(86_400 * 2 + 3600 * 3), "2d3h");
        assert_eq!(human_age(86_400 * 400), "400d");
        assert_eq!(human_age(86_400 * 800), "2y70d");
    }
}
