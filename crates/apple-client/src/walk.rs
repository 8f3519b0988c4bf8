//! Walking every page of a paginated endpoint: page 0 first, then the rest with at most
//! `parallel` requests in flight (Apple: never more than 5), handed on in order. The walk notices
//! when the data changed under it (a `versionId` other than page 0's, or a page count that moved).

use allot_apple_wire::{GetAssetsResponse, GetAssignmentsResponse, GetUsersResponse, PageInfo};
use futures::stream::{self, StreamExt};

use crate::error::{AppleError, AppleResult};

/// A page of Get Assets / Get Assignments / Get Users.
pub trait Paged {
    fn page_info(&self) -> &PageInfo;
}

impl Paged for GetAssetsResponse {
    fn page_info(&self) -> &PageInfo {
        &self.page
    }
}
impl Paged for GetAssignmentsResponse {
    fn page_info(&self) -> &PageInfo {
        &self.page
    }
}
impl Paged for GetUsersResponse {
    fn page_info(&self) -> &PageInfo {
        &self.page
    }
}

/// Errors of a sink are the caller's own; the walk only passes them through.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where walked pages go (a database writer, a collector in tests).
pub trait PageSink<T> {
    fn page(&mut self, page: T) -> impl std::future::Future<Output = Result<(), SinkError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkSummary {
    pub pages: i32,
    pub records: usize,
    /// `versionId` of page 0: the state the walk started from.
    pub version_id: String,
    /// Some page carried another `versionId`, or the page count moved: records may have been
    /// missed or seen twice, and the caller should reconcile.
    pub changed_during_walk: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Apple(#[from] AppleError),
    #[error("storing a page failed: {0}")]
    Sink(SinkError),
    #[error("Apple answered page {got} when asked for page {asked}")]
    WrongPage { asked: i32, got: i32 },
}

/// Walks all pages. `fetch(i)` fetches page `i`; `count(&page)` says how many records it holds.
pub async fn walk<T, F, Fut, S>(
    parallel: usize,
    fetch: F,
    count: impl Fn(&T) -> usize,
    sink: &mut S,
) -> Result<WalkSummary, WalkError>
where
    T: Paged,
    F: Fn(i32) -> Fut,
    Fut: std::future::Future<Output = AppleResult<T>>,
    S: PageSink<T>,
{
    let first = fetch(0).await?;
    check_page(0, &first)?;
    let version_id = first.page_info().version_id.clone();
    let mut total_pages = first.page_info().total_pages.max(1);
    let mut records = count(&first);
    let mut pages = 1;
    let more = first.page_info().next_page_index.is_some();
    sink.page(first).await.map_err(WalkError::Sink)?;
    if !more {
        return Ok(WalkSummary {
            pages,
            records,
            version_id,
            changed_during_walk: false,
        });
    }
    // Fetching and storing run side by side: the next pages are on their way (at Apple's pace)
    // while the sink writes the last one. The channel bounds what waits in memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<T>(2 * parallel.clamp(1, 5));
    let first_version = version_id.clone();
    let producer = async move {
        let mut changed = false;
        let mut next = 1;
        // Pages are requested in rounds up to the latest known total, so a walk whose total grows
        // keeps going and one whose total shrinks stops at the new end.
        while next < total_pages {
            let round_end = total_pages;
            let mut fetched = stream::iter(next..round_end).map(|i| {
                let f = fetch(i);
                async move { (i, f.await) }
            });
            let mut ordered = (&mut fetched).buffered(parallel.clamp(1, 5));
            let mut ended_early = false;
            while let Some((i, res)) = ordered.next().await {
                let page = match res {
                    Ok(p) => p,
                    // The data shrank: this page no longer exists.
                    Err(AppleError::Api(e))
                        if e.error_number == allot_apple_wire::codes::PAGE_OUT_OF_RANGE =>
                    {
                        changed = true;
                        ended_early = true;
                        break;
                    }
                    Err(e) => return Err(WalkError::from(e)),
                };
                check_page(i, &page)?;
                let info = page.page_info();
                if info.version_id != first_version || info.total_pages != total_pages {
                    changed = true;
                }
                let latest_total = info.total_pages.max(1);
                let last = info.next_page_index.is_none();
                if tx.send(page).await.is_err() {
                    // The sink failed; its error is reported below.
                    return Ok(changed);
                }
                if last && i + 1 < round_end {
                    ended_early = true;
                    break;
                }
                total_pages = total_pages.max(latest_total);
            }
            if ended_early {
                break;
            }
            next = round_end;
        }
        Ok(changed)
    };
    let consumer = async {
        while let Some(page) = rx.recv().await {
            records += count(&page);
            pages += 1;
            sink.page(page).await.map_err(WalkError::Sink)?;
        }
        Ok::<(), WalkError>(())
    };
    let (produced, consumed) = tokio::join!(producer, consumer);
    consumed?;
    let changed = produced?;
    Ok(WalkSummary {
        pages,
        records,
        version_id,
        changed_during_walk: changed,
    })
}

fn check_page<T: Paged>(asked: i32, page: &T) -> Result<(), WalkError> {
    let got = page.page_info().current_page_index;
    if got != asked {
        return Err(WalkError::WrongPage { asked, got });
    }
    Ok(())
}
