//! Paging returns every item exactly once (SG-MSG-13), as a property: random
//! list sizes and page sizes, for history and for user conversations, where
//! many conversations share one activity time (ties are ordered by id).

use crate::helpers::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use supergroup_protocol::rest::{ConversationUpsert, PageQuery};

static CASE: AtomicUsize = AtomicUsize::new(0);

fn query(limit: usize, after: Option<String>) -> PageQuery {
    PageQuery { limit: Some(limit.to_string()), starting_after: after }
}

/// Follows `startingAfter` from the first page until a page is short; returns every id in order.
async fn page_through<F, Fut>(limit: usize, mut fetch: F) -> Vec<String>
where
    F: FnMut(PageQuery) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let mut all: Vec<String> = Vec::new();
    for _ in 0..200 {
        let page = fetch(query(limit, all.last().cloned())).await;
        assert!(page.len() <= limit, "a page of {} items with limit {limit}", page.len());
        let short = page.len() < limit;
        all.extend(page);
        if short {
            return all;
        }
    }
    panic!("paging did not end within 200 pages");
}

#[test]
fn paging_history_returns_every_message_once_in_order_sg_msg_13() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(n in 0usize..=35, limit in 1usize..=8)| {
        let conv = format!("h{}", CASE.fetch_add(1, Ordering::Relaxed));
        let (paged, stored) = rt.block_on(async {
            app.conversation(&conv, &["alice"]).await;
            for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
                let batch: Vec<_> = chunk.iter().map(|i| user_message("alice", &format!("m{i}"))).collect();
                app.rest.post_messages(&conv, &batch).await.expect("batch stored");
            }
            let stored: Vec<String> = app.history(&conv).await.into_iter().map(|m| m.id).collect();
            let paged = page_through(limit, |q| {
                let (rest, conv) = (app.rest.clone(), conv.clone());
                async move { rest.messages(&conv, &q).await.expect("page").data.into_iter().map(|m| m.id).collect() }
            })
            .await;
            (paged, stored)
        });
        prop_assert_eq!(stored.len(), n);
        prop_assert_eq!(paged, stored);
    });
    rt.block_on(app.stop());
}

#[test]
fn paging_user_conversations_returns_every_conversation_once_in_order_sg_msg_13() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let config = ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(m in 0usize..=14, limit in 1usize..=5, talk in proptest::collection::vec(any::<bool>(), 14))| {
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let user = format!("u{case}");
        let (paged, whole) = rt.block_on(async {
            app.rest.put_user(&user, &Default::default()).await.unwrap();
            // Created in a burst, so many share one createdAt (a tie ordered by id);
            // some get a message, which moves them up.
            for i in 0..m {
                let body = ConversationUpsert { participants: Some(vec![user.clone()]), ..Default::default() };
                app.rest.put_conversation(&format!("c{case}-{:02}", (i * 7) % 15), &body).await.unwrap();
            }
            for (i, _) in talk.iter().enumerate().take(m).filter(|(_, talks)| **talks) {
                {
                    app.post(&format!("c{case}-{:02}", (i * 7) % 15), &user, "hi").await;
                }
            }
            let whole: Vec<String> = app
                .rest
                .user_conversations(&user, &query(100, None))
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|c| c.conversation.id)
                .collect();
            let paged = page_through(limit, |q| {
                let (rest, user) = (app.rest.clone(), user.clone());
                async move {
                    rest.user_conversations(&user, &q).await.expect("page").data.into_iter().map(|c| c.conversation.id).collect()
                }
            })
            .await;
            (paged, whole)
        });
        prop_assert_eq!(whole.len(), m);
        prop_assert_eq!(paged, whole);
    });
    rt.block_on(app.stop());
}
