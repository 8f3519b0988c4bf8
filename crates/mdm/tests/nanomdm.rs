//! The NanoMDM adapter against the fake NanoMDM, over HTTP; the fake's webhooks go to a receiver
//! that checks their signatures.

use std::sync::{Arc, Mutex};

use allot_mdm::fake::{Behaviour, FakeNanoMdm, FakeOptions, SimDevice, UnknownIds};
use allot_mdm::{webhook, Command, Event, MdmError, NanoMdm, NanoMdmConfig};

const HMAC: &[u8] = b"webhook-hmac-key-0123456789";

struct Receiver {
    events: Arc<Mutex<Vec<Event>>>,
    url: String,
}

async fn receiver() -> Receiver {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let e = events.clone();
    let app = axum::Router::new().route(
        "/mdm/webhook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let e = e.clone();
                async move {
                    let sig = headers
                        .get("x-hmac-signature")
                        .and_then(|v| v.to_str().ok());
                    if webhook::verify_signature(HMAC, &body, sig).is_err() {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    e.lock().unwrap().push(webhook::parse(&body).unwrap());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mdm/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { events, url }
}

async fn setup(unknown: UnknownIds) -> (FakeNanoMdm, NanoMdm, Receiver) {
    let rx = receiver().await;
    let fake = FakeNanoMdm::start(FakeOptions {
        webhook_url: Some(rx.url.clone()),
        hmac_key: Some(HMAC.to_vec()),
        unknown_ids: unknown,
        ..Default::default()
    })
    .await
    .unwrap();
    let mdm = NanoMdm::new(NanoMdmConfig {
        base_url: fake.base_url.clone(),
        prefix: "/v1".into(),
        user: "nanomdm".into(),
        api_key: "nanomdm-api-key".into(),
        trust: allot_trust::Trust::system(),
    });
    (fake, mdm, rx)
}

fn ipad(n: u32) -> SimDevice {
    SimDevice {
        udid: format!("00008020-00091508{n:08X}"),
        serial_number: format!("DMPQ{n:08}"),
        product_name: "iPad13,1".into(),
        name: format!("iPad {n}"),
    }
}

fn install(adam: i64) -> Command {
    Command::install_app(adam)
}

#[tokio::test]
async fn a_command_goes_out_and_its_result_comes_back_through_the_webhook() {
    let (fake, mdm, rx) = setup(UnknownIds::Queue).await;
    let d = ipad(1);
    assert!(fake.enroll(d.clone()).await);
    let events = rx.events.lock().unwrap().clone();
    assert!(
        matches!(&events[0], Event::Authenticate(c) if c.serial_number.as_deref() == Some("DMPQ00000001") && c.enrollment_id == d.udid)
    );
    assert_eq!(
        events[1],
        Event::TokenUpdate {
            enrollment_id: d.udid.clone(),
            first: true
        }
    );

    fake.set_bundle_id(408709785, "com.apple.mobilegarageband");
    let res = mdm
        .enqueue(
            std::slice::from_ref(&d.udid),
            &install(408709785),
            "cmd-1",
            true,
        )
        .await
        .unwrap();
    let r = &res.ids[&d.udid];
    assert!(r.queued && r.push_error.is_none() && r.command_error.is_none());
    let sent = fake.enqueued();
    assert_eq!(
        sent[0].1,
        install(408709785).to_plist("cmd-1"),
        "NanoMDM stores the plist bytes verbatim"
    );
    assert_eq!(
        fake.queue(&d.udid),
        vec![("cmd-1".to_owned(), "InstallApplication".to_owned())]
    );

    assert_eq!(fake.drain(&d.udid).await, vec!["Acknowledged"]);
    let last = rx.events.lock().unwrap().last().cloned().unwrap();
    let Event::Connect {
        enrollment_id,
        status,
        command_uuid,
        report,
    } = last
    else {
        panic!("a command report")
    };
    assert_eq!(
        (
            enrollment_id.as_str(),
            status.as_str(),
            command_uuid.as_deref()
        ),
        (d.udid.as_str(), "Acknowledged", Some("cmd-1"))
    );
    let report = report.unwrap();
    assert_eq!(
        report.get("Identifier").and_then(|v| v.as_string()),
        Some("com.apple.mobilegarageband")
    );
    assert_eq!(
        report.get("State").and_then(|v| v.as_string()),
        Some("Managed")
    );
    assert_eq!(
        fake.installed_apps(&d.udid),
        vec!["com.apple.mobilegarageband"]
    );
    assert_eq!(fake.webhook_failures(), 0);
}

#[tokio::test]
async fn nanomdms_answers_are_read_per_enrollment() {
    let (fake, mdm, _rx) = setup(UnknownIds::Queue).await;
    let known = ipad(2);
    fake.enroll(known.clone()).await;
    // One known, one never seen: 207, both queued (filekv), the unknown one not woken.
    let ids = vec![known.udid.clone(), "NEVER-SEEN".to_owned()];
    let res = mdm.enqueue(&ids, &install(1), "cmd-a", true).await.unwrap();
    assert!(res.ids[&known.udid].queued && res.ids[&known.udid].push_error.is_none());
    assert!(res.ids["NEVER-SEEN"].queued);
    assert_eq!(
        res.ids["NEVER-SEEN"].push_error.as_deref(),
        Some("push data missing for id")
    );
    // All failing to push is HTTP 500, and still queued.
    let res = mdm
        .enqueue(&["NEVER-SEEN".to_owned()], &install(1), "cmd-b", true)
        .await
        .unwrap();
    assert!(res.ids["NEVER-SEEN"].queued);
    // nopush: nothing to fail.
    let res = mdm
        .enqueue(&["NEVER-SEEN".to_owned()], &install(1), "cmd-c", false)
        .await
        .unwrap();
    assert!(res.ids["NEVER-SEEN"].push_error.is_none());
    // A reused CommandUUID queues nothing.
    assert!(
        matches!(mdm.enqueue(std::slice::from_ref(&known.udid), &install(1), "cmd-a", true).await, Err(MdmError::Rejected(m)) if m.contains("already exists"))
    );
    let bad = NanoMdm::new(NanoMdmConfig {
        base_url: fake.base_url.clone(),
        prefix: "/v1".into(),
        user: "nanomdm".into(),
        api_key: "wrong".into(),
        trust: allot_trust::Trust::system(),
    });
    assert_eq!(
        bad.enqueue(
            std::slice::from_ref(&known.udid),
            &install(1),
            "cmd-d",
            true
        )
        .await,
        Err(MdmError::Unauthorized)
    );
    assert!(matches!(
        mdm.enqueue(&["a,b".to_owned()], &install(1), "cmd-e", true)
            .await,
        Err(MdmError::Rejected(_))
    ));
}

#[tokio::test]
async fn sql_backends_refuse_unknown_ids_whole() {
    let (fake, mdm, _rx) = setup(UnknownIds::Reject).await;
    let known = ipad(3);
    fake.enroll(known.clone()).await;
    let res = mdm
        .enqueue(
            &[known.udid.clone(), "NEVER-SEEN".to_owned()],
            &install(1),
            "cmd-1",
            true,
        )
        .await;
    assert!(matches!(res, Err(MdmError::Rejected(m)) if m.contains("foreign key")));
    assert!(
        fake.queue(&known.udid).is_empty(),
        "nothing was queued for anyone"
    );
}

#[tokio::test]
async fn not_now_keeps_the_command_errors_carry_their_chain_and_reenrolling_clears_the_queue() {
    let (fake, mdm, rx) = setup(UnknownIds::Queue).await;
    let d = ipad(4);
    fake.enroll(d.clone()).await;
    fake.set_behaviour(&d.udid, Behaviour::NotNow(1));
    mdm.enqueue(std::slice::from_ref(&d.udid), &install(5), "cmd-1", true)
        .await
        .unwrap();
    assert_eq!(
        fake.drain(&d.udid).await,
        Vec::<String>::new(),
        "NotNow stops the session"
    );
    assert_eq!(fake.queue(&d.udid).len(), 1, "and keeps the command");
    assert_eq!(fake.drain(&d.udid).await, vec!["Acknowledged"]);

    fake.set_behaviour(
        &d.udid,
        Behaviour::FailInstalls {
            code: 12064,
            domain: "MCMDMErrorDomain".into(),
            description: "License not found".into(),
        },
    );
    mdm.enqueue(std::slice::from_ref(&d.udid), &install(6), "cmd-2", true)
        .await
        .unwrap();
    assert_eq!(fake.drain(&d.udid).await, vec!["Error"]);
    let Some(Event::Connect {
        status,
        report: Some(report),
        ..
    }) = rx.events.lock().unwrap().last().cloned()
    else {
        panic!()
    };
    assert_eq!(status, "Error");
    let chain = report.get("ErrorChain").and_then(|v| v.as_array()).unwrap();
    assert_eq!(
        chain[0]
            .as_dictionary()
            .unwrap()
            .get("ErrorCode")
            .and_then(|v| v.as_signed_integer()),
        Some(12064)
    );

    mdm.enqueue(std::slice::from_ref(&d.udid), &install(7), "cmd-3", true)
        .await
        .unwrap();
    fake.enroll(d.clone()).await;
    assert!(
        fake.queue(&d.udid).is_empty(),
        "Authenticate clears the queue"
    );
    assert!(fake.check_out(&d.udid).await);
    assert!(matches!(
        rx.events.lock().unwrap().last(),
        Some(Event::CheckOut { .. })
    ));
}

/// As real NanoMDM: the reply to a NotNow is the next command, skipping the NotNow'd one once;
/// after any other answer the NotNow'd one comes straight back.
#[tokio::test]
async fn a_not_now_skips_that_command_once() {
    let (fake, mdm, _rx) = setup(UnknownIds::Queue).await;
    let d = ipad(7);
    fake.enroll(d.clone()).await;
    fake.set_behaviour(&d.udid, Behaviour::NotNow(1));
    for (adam, uuid) in [(5, "x-1"), (6, "y-2")] {
        mdm.enqueue(std::slice::from_ref(&d.udid), &install(adam), uuid, true)
            .await
            .unwrap();
    }
    let order: Vec<(String, Option<String>)> = vec![
        fake.check_in(&d.udid).await.unwrap(),
        fake.check_in(&d.udid).await.unwrap(),
        fake.check_in(&d.udid).await.unwrap(),
    ];
    assert_eq!(
        order,
        vec![
            ("NotNow".to_owned(), Some("x-1".to_owned())),
            ("Acknowledged".to_owned(), Some("y-2".to_owned())),
            ("Acknowledged".to_owned(), Some("x-1".to_owned())),
        ]
    );
}
