//! Ordered collections (an outbox, an inbox, followers and following) and
//! their pages: the `OrderedCollection` and `OrderedCollectionPage`
//! documents, how weft numbers pages (page 1 holds the newest items), and
//! the page links (`?page=N`, `?since=<id>`, with `&limit=N`) that the
//! server writes and a backfill follows.
//!
//! The format only: which items a reader may see, and reading the query
//! string of a request, are the HTTP layer's.

use serde::Serialize;
use serde_json::{Value, json};

use super::AS_CONTEXT;

/// A paged collection: its size and links to its first and last pages.
pub fn paged(id: &str, total: u64, first: String, last: String) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": first,
        "last": last,
    })
}

/// A collection that holds all its items (followers, following).
pub fn whole<T: Serialize>(id: &str, items: &[T]) -> Value {
    json!({
        "@context": AS_CONTEXT,
        "id": id,
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page<'a, I> {
    /// The page's own URL.
    pub id: String,
    /// The collection's URL.
    pub part_of: &'a str,
    /// The collection's size, when the page says it.
    pub total: Option<u64>,
    pub items: I,
    pub next: Option<String>,
    pub prev: Option<String>,
}

impl<I: Serialize> Page<'_, I> {
    /// The `OrderedCollectionPage` document.
    pub fn to_json(&self) -> Value {
        let mut page = json!({
            "@context": AS_CONTEXT,
            "id": self.id,
            "type": "OrderedCollectionPage",
            "partOf": self.part_of,
            "orderedItems": self.items,
        });
        if let Some(total) = self.total {
            page["totalItems"] = total.into();
        }
        if let Some(next) = &self.next {
            page["next"] = next.as_str().into();
        }
        if let Some(prev) = &self.prev {
            page["prev"] = prev.as_str().into();
        }
        page
    }
}

/// How many pages of `limit` items `total` items fill (at least one: an
/// empty collection has an empty first page).
pub fn page_count(total: u64, limit: u64) -> u64 {
    total.div_ceil(limit).max(1)
}

/// The positions (1-based, oldest first) that page `page` holds, newest
/// first, of a collection of `total` items cut into pages of `limit`: page
/// 1 ends with the newest item. `None` for a page past the end.
pub fn window(total: u64, page: u64, limit: u64) -> Option<(u64, u64)> {
    let newest = total.saturating_sub(page.saturating_sub(1).saturating_mul(limit));
    let oldest = newest.saturating_sub(limit.saturating_sub(1)).max(1);
    (newest > 0).then_some((oldest, newest))
}

/// The URL of page `page` of the collection at `base`, naming `limit` when
/// given.
pub fn page_url(base: &str, page: u64, limit: Option<u64>) -> String {
    match limit {
        Some(limit) => format!("{base}?page={page}&limit={limit}"),
        None => format!("{base}?page={page}"),
    }
}

/// The URL of the (at most) `limit` items after the item `since`, oldest
/// first; from the start of the collection without one.
pub fn since_url(base: &str, since: Option<&str>, limit: u64) -> String {
    match since {
        Some(id) if !id.is_empty() => format!("{base}?since={id}&limit={limit}"),
        _ => format!("{base}?limit={limit}"),
    }
}

/// The entries of a page (`orderedItems`), objects only.
pub fn ordered_items(page: &Value) -> Vec<Value> {
    match page.get("orderedItems") {
        Some(Value::Array(items)) => items.iter().filter(|i| i.is_object()).cloned().collect(),
        _ => Vec::new(),
    }
}

/// A page's link to the next one.
pub fn next(page: &Value) -> Option<&str> {
    page.get("next").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_numbered_from_the_newest() {
        assert_eq!(window(0, 1, 10), None);
        assert_eq!(window(25, 1, 10), Some((16, 25)));
        assert_eq!(window(25, 3, 10), Some((1, 5)));
        assert_eq!(window(25, 4, 10), None);
        assert_eq!(window(25, u64::MAX, 10), None);
        assert_eq!(page_count(0, 10), 1);
        assert_eq!(page_count(25, 10), 3);
    }

    #[test]
    fn a_page_is_read_back_as_written() {
        let page = Page {
            id: page_url("https://n.example/a/outbox", 1, Some(2)),
            part_of: "https://n.example/a/outbox",
            total: Some(3),
            items: vec![json!({"id": "x"}), json!({"id": "y"})],
            next: Some(since_url("https://n.example/a/outbox", Some("y"), 2)),
            prev: None,
        }
        .to_json();
        assert_eq!(page["id"], "https://n.example/a/outbox?page=1&limit=2");
        assert_eq!(ordered_items(&page).len(), 2);
        assert_eq!(
            next(&page),
            Some("https://n.example/a/outbox?since=y&limit=2")
        );
        assert!(page.get("prev").is_none());
    }
}
