//! Automatic pagination of the list commands, with the aws CLI's semantics:
//!
//! - By default every page is fetched (following `nextToken`) and the items
//!   are printed as one list.
//! - `--max-items N` stops after N items; if more remain, the output gets a
//!   `NextToken` to pass to `--starting-token` to carry on where it stopped,
//!   even in the middle of a server page.
//! - `--no-paginate` makes one call and prints its response as is.
//!
//! A `NextToken` is base64 of `{"nextToken": <server token or null>,
//! "skip": <items of that page already shown>}`. A `--starting-token` that
//! is not in that form is passed to the server as a plain `nextToken`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// Where a listing resumes: the server token of a page and how many of that
/// page's items were already shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resume {
    pub next_token: Option<String>,
    #[serde(default)]
    pub skip: usize,
}

impl Resume {
    /// The `NextToken` printed for this position.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a `--starting-token`.
    pub fn decode(token: &str) -> Self {
        URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| Self {
                next_token: Some(token.to_string()),
                skip: 0,
            })
    }
}

/// Collects the items of successive pages until done or `max_items` reached.
#[derive(Debug)]
pub struct Collector<T> {
    max_items: Option<usize>,
    /// The token to send for the next page (`None` = first page).
    token: Option<String>,
    /// Items of the next page to drop because they were already shown.
    skip: usize,
    items: Vec<T>,
    done: bool,
    resume: Option<Resume>,
}

impl<T> Collector<T> {
    pub fn new(start: Resume, max_items: Option<usize>) -> Self {
        Self {
            max_items,
            token: start.next_token.filter(|t| !t.is_empty()),
            skip: start.skip,
            items: Vec::new(),
            done: false,
            resume: None,
        }
    }

    /// The `nextToken` for the next call, or `None` when no call is needed.
    pub fn next_request(&self) -> Option<Option<&str>> {
        (!self.done).then_some(self.token.as_deref())
    }

    /// Takes in a page and the `nextToken` that came with it.
    pub fn accept(&mut self, page: Vec<T>, next_token: &str) {
        let page_len = page.len();
        let room = self.max_items.map(|max| max - self.items.len());
        let fresh = page_len.saturating_sub(self.skip);
        match room {
            Some(room) if fresh > room => {
                // Stop inside this page: resume at the same page, later on.
                let skip = self.skip + room;
                self.items
                    .extend(page.into_iter().skip(self.skip).take(room));
                self.resume = Some(Resume {
                    next_token: self.token.clone(),
                    skip,
                });
                self.done = true;
                return;
            }
            _ => self.items.extend(page.into_iter().skip(self.skip)),
        }
        self.skip = 0;
        if next_token.is_empty() {
            self.done = true;
        } else if self.max_items == Some(self.items.len()) {
            self.resume = Some(Resume {
                next_token: Some(next_token.to_string()),
                skip: 0,
            });
            self.done = true;
        } else {
            self.token = Some(next_token.to_string());
        }
    }

    /// The items and, if the listing stopped early, the `NextToken` to print.
    pub fn finish(self) -> (Vec<T>, Option<String>) {
        (self.items, self.resume.as_ref().map(Resume::encode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake server: `pages[i]` is answered for token `i` (none = page 0).
    fn run(
        pages: &[&[u32]],
        start: Resume,
        max_items: Option<usize>,
    ) -> (Vec<u32>, Option<Resume>, usize) {
        let mut collector = Collector::new(start, max_items);
        let mut calls = 0;
        while let Some(token) = collector.next_request() {
            let index: usize = token.map_or(0, |t| t.parse().unwrap());
            let next = if index + 1 < pages.len() {
                (index + 1).to_string()
            } else {
                String::new()
            };
            calls += 1;
            collector.accept(pages[index].to_vec(), &next);
        }
        let (items, token) = collector.finish();
        (items, token.map(|t| Resume::decode(&t)), calls)
    }

    const PAGES: &[&[u32]] = &[&[1, 2, 3], &[4, 5, 6], &[7]];

    #[test]
    fn follows_next_tokens_until_the_end() {
        assert_eq!(
            run(PAGES, Resume::default(), None),
            (vec![1, 2, 3, 4, 5, 6, 7], None, 3)
        );
        assert_eq!(run(&[&[]], Resume::default(), None), (vec![], None, 1));
    }

    #[test]
    fn max_items_inside_a_page_resumes_in_that_page() {
        let (items, resume, calls) = run(PAGES, Resume::default(), Some(4));
        assert_eq!(items, [1, 2, 3, 4]);
        assert_eq!(calls, 2);
        let resume = resume.unwrap();
        assert_eq!(
            resume,
            Resume {
                next_token: Some("1".into()),
                skip: 1
            }
        );
        assert_eq!(run(PAGES, resume, Some(4)).0, [5, 6, 7]);
    }

    #[test]
    fn max_items_at_a_page_boundary_resumes_at_the_next_page() {
        let (items, resume, calls) = run(PAGES, Resume::default(), Some(3));
        assert_eq!((items, calls), (vec![1, 2, 3], 1));
        let resume = resume.unwrap();
        assert_eq!(resume.next_token.as_deref(), Some("1"));
        assert_eq!(run(PAGES, resume, None).0, [4, 5, 6, 7]);
    }

    #[test]
    fn max_items_covering_everything_prints_no_token() {
        assert_eq!(run(PAGES, Resume::default(), Some(7)).1, None);
        assert_eq!(run(PAGES, Resume::default(), Some(100)).1, None);
    }

    #[test]
    fn starting_tokens_round_trip_and_fall_back_to_raw_server_tokens() {
        let resume = Resume {
            next_token: Some("abc/+=".into()),
            skip: 2,
        };
        assert_eq!(Resume::decode(&resume.encode()), resume);
        assert_eq!(
            Resume::decode("server-token"),
            Resume {
                next_token: Some("server-token".into()),
                skip: 0
            }
        );
        // Resuming from the first page (no server token).
        let first = Resume {
            next_token: None,
            skip: 1,
        };
        assert_eq!(run(PAGES, first, Some(2)).0, [2, 3]);
    }
}
