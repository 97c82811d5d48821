//! Paging the node's ordered collections over HTTP (an outbox, an inbox):
//! the `page` and `limit` query parameters, and numbered pages, page 1 the
//! newest, cut from a collection the handler reads by position.
//!
//! The documents, page numbering and links are
//! `weft_core::wire::collection`'s; which items a reader may see is the
//! handler's.

use std::collections::HashMap;

use serde_json::Value;
use serde_json::value::RawValue;
use weft_core::wire::collection::{self, Page};

use super::Problem;

/// Most items one page may hold.
pub const MAX_LIMIT: u64 = 200;

/// The `limit` query parameter of a collection page: 1 to [`MAX_LIMIT`],
/// `page_size` when absent.
pub fn page_limit(query: &HashMap<String, String>, page_size: usize) -> Result<u64, Problem> {
    match query.get("limit") {
        None => Ok(page_size as u64),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_LIMIT}"
                ))
            }),
    }
}

/// The `page` query parameter, when there is one: a whole number from 1.
pub fn page_number(query: &HashMap<String, String>) -> Result<Option<u64>, Problem> {
    query
        .get("page")
        .map(|page| {
            page.parse::<u64>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| Problem::bad_request("`page` must be a whole number from 1"))
        })
        .transpose()
}

/// How a collection at `base` of `total` items is cut into pages.
#[derive(Debug, Clone, Copy)]
pub struct Paging<'a> {
    pub base: &'a str,
    pub total: u64,
    /// Items a page.
    pub limit: u64,
    /// Whether page links name the limit (`&limit=N`).
    pub named: bool,
}

impl Paging<'_> {
    fn link(&self, page: u64) -> String {
        collection::page_url(self.base, page, self.named.then_some(self.limit))
    }

    /// The collection: its size and its first and last pages.
    pub fn collection(&self) -> Value {
        let last = collection::page_count(self.total, self.limit);
        collection::paged(self.base, self.total, self.link(1), self.link(last))
    }

    /// Page `page` (1 = newest), newest first. `read(oldest, newest)`
    /// answers the items at those positions (1-based), oldest first.
    pub fn page(
        &self,
        page: u64,
        read: impl FnOnce(u64, u64) -> Result<Vec<Box<RawValue>>, Problem>,
    ) -> Result<Value, Problem> {
        let mut items = match collection::window(self.total, page, self.limit) {
            Some((oldest, newest)) => read(oldest, newest)?,
            None => Vec::new(),
        };
        items.reverse();
        let pages = collection::page_count(self.total, self.limit);
        Ok(Page {
            id: self.link(page),
            part_of: self.base,
            total: Some(self.total),
            items,
            next: (page < pages).then(|| self.link(page + 1)),
            prev: (page > 1).then(|| self.link(page - 1)),
        }
        .to_json())
    }
}
