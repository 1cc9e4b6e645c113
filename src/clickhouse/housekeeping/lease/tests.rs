use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::*;
use crate::sink::twin::TwinStore;

fn target() -> Target {
    Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        ..Default::default()
    }
}

/// A twin whose lease table is made of the claims its statements inserted: a claim's time is
/// the position of its statement, a renewal keeps its time; holders in `expired` are past their
/// expiry.
fn server(expired: Arc<Mutex<Vec<String>>>) -> Arc<TwinStore> {
    let me: Arc<OnceLock<Weak<TwinStore>>> = Arc::new(OnceLock::new());
    let handle = me.clone();
    let twin = Arc::new(TwinStore::scripted(move |q, _| {
        if !q.starts_with("SELECT holder, toUInt32(taken_at)") {
            return None;
        }
        let twin = handle.get()?.upgrade()?;
        let mut claims: Vec<(String, u32)> = Vec::new();
        for (i, st) in twin.statements().iter().enumerate() {
            let holder = st.split("'housekeeping', '").nth(1)?.split('\'').next()?;
            let taken = match st.split("toDateTime(").nth(1) {
                Some(rest) => rest.split(',').next()?.parse().ok()?,
                None => i as u32 + 1,
            };
            if !claims.iter().any(|(h, t)| h == holder && *t == taken) {
                claims.push((holder.to_string(), taken));
            }
        }
        let expired = expired.lock().unwrap();
        claims.retain(|(h, _)| !expired.contains(h));
        claims.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Some(
            claims
                .into_iter()
                .map(|(h, t)| vec![h, t.to_string(), "4000000000".into()])
                .collect(),
        )
    }));
    me.set(Arc::downgrade(&twin)).unwrap();
    twin
}

fn lease(name: &str) -> Lease {
    Lease::named(target(), Duration::from_millis(10), name.into())
}

#[test]
fn the_earliest_live_claim_holds_the_lease() {
    let live = vec![("b".to_string(), 5, 9), ("a".to_string(), 6, 9)];
    assert_eq!(decide(&live, "b"), Step::Renew { taken_at: 5 });
    assert_eq!(decide(&live, "a"), Step::Yield { holder: "b".into() });
    assert_eq!(decide(&[], "a"), Step::Claim);
}

/// Two sinks on one table: the first claims and keeps renewing, the second never runs a round
/// while the first's claim lives, and takes over once it expires.
#[tokio::test]
async fn of_two_sinks_one_holds_the_lease_until_its_claim_expires() {
    let expired = Arc::new(Mutex::new(Vec::new()));
    let twin = server(expired.clone());
    let (mut a, mut b) = (lease("sink-a"), lease("sink-b"));
    assert!(a.hold(&*twin).await.unwrap());
    assert!(!b.hold(&*twin).await.unwrap());
    assert!(a.hold(&*twin).await.unwrap());
    assert!(!b.hold(&*twin).await.unwrap());
    let statements = twin.statements();
    assert_eq!(
        statements.len(),
        2,
        "one claim, one renewal: {statements:?}"
    );
    assert!(statements[0].contains("'sink-a', now(), now() + 10"));
    assert!(statements[1].contains("'sink-a', toDateTime(1, 'UTC'), now() + 10"));
    // Sink a stops; its claim expires; b claims and holds, a (restarted under a new name)
    // does not.
    expired.lock().unwrap().push("sink-a".into());
    assert!(b.hold(&*twin).await.unwrap());
    let mut a2 = lease("sink-a2");
    assert!(!a2.hold(&*twin).await.unwrap());
    assert!(b.hold(&*twin).await.unwrap());
}

/// Two sinks that claim at once both read the same claims back: the earlier one holds.
#[tokio::test]
async fn of_two_claims_at_once_the_earlier_wins() {
    let twin = server(Arc::new(Mutex::new(Vec::new())));
    // Sink b's claim is in before a reads: a's read-back sees b's earlier claim.
    twin.execute(&sql::claim_sql(&target(), "sink-b", 10))
        .await
        .unwrap();
    let mut a = lease("sink-a");
    // a sees a live claim (b's) and yields without claiming.
    assert!(!a.hold(&*twin).await.unwrap());
    assert_eq!(twin.statements().len(), 1);
    let mut b = lease("sink-b");
    assert!(b.hold(&*twin).await.unwrap());
}
