//! Complete sessions between our client and our server.

use std::sync::Arc;

use tessera_tlslp::driver::{connect_and_run, SessionEnd};
use tessera_tlslp::logfile::{MemoryLog, NoLog};
use tessera_tlslp::{Level, Sequence};

use crate::util::{TestServer, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_session_over_mutual_tls() {
    let mut server = TestServer::start(Sequence::Tutorial, 12, |_| {}).await;
    let log = MemoryLog::default();
    let report = connect_and_run(&server.client_options(), &log)
        .await
        .unwrap();
    assert_eq!(report.end, SessionEnd::Done);
    assert_eq!(report.handshake.protocol, "TLSv1.3");
    assert!(report.work.is_some());
    let record = server.next_record().await;
    assert_eq!(record.outcome.to_string(), "done");
    assert!(record.work_time.is_some());
    let sent: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.level == Level::Info)
        .map(|e| e.message)
        .collect();
    assert!(
        sent.contains(&"Sending to server: 'Sample Person\\n'".to_owned()),
        "{sent:?}"
    );
    let report = server.stop().await;
    assert_eq!(report.done, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_mode_sessions_end_in_done_or_the_random_fail_and_many_run_at_once() {
    let mut server = TestServer::start(Sequence::Random, 8, |_| {}).await;
    let options = server.client_options();
    let clients: Vec<_> = (0..24)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move { connect_and_run(&options, &NoLog).await.unwrap() })
        })
        .collect();
    let mut done = 0;
    for client in clients {
        match tokio::time::timeout(TIMEOUT, client)
            .await
            .unwrap()
            .unwrap()
            .end
        {
            SessionEnd::Done => done += 1,
            SessionEnd::ServerFail(text) => assert_eq!(text, "LGTk"),
            SessionEnd::Error(error) => panic!("{error}"),
        }
    }
    for _ in 0..24 {
        let record = server.next_record().await;
        assert!(
            record.outcome.to_string() == "done" || record.outcome.to_string() == "fail:random",
            "{}",
            record.outcome.to_string()
        );
    }
    let report = server.stop().await;
    assert_eq!(report.done, done);
    assert_eq!(report.done + report.failed, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_mode_on_localhost() {
    let pki = tessera_tls::DevPki::generate(&tessera_tls::PkiOptions::default()).unwrap();
    let tls = tessera_tls::dangerous::insecure_server_config(
        "127.0.0.1:0".parse().unwrap(),
        &pki.server.identity().unwrap(),
    )
    .unwrap();
    let session = Arc::new(tessera_tlslp::SessionConfig {
        token: tessera_tlslp::DEFAULT_TOKEN.into(),
        random_string: "LGTk".into(),
        n_bits: 4,
        sequence: Sequence::Tutorial,
        timeouts: tessera_tlslp::Timeouts::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut options = tessera_tlslp::driver::ServerOptions::new(tls, session);
    options.once = true;
    let server = tokio::spawn(tessera_tlslp::driver::serve(
        listener,
        options,
        Arc::new(NoLog),
        None,
        std::future::pending(),
    ));
    let client = tessera_tlslp::driver::ClientOptions {
        host: "localhost".into(),
        ports: vec![port],
        tls: tessera_tls::dangerous::insecure_client_config("localhost", None).unwrap(),
        read_timeout: TIMEOUT,
        work_timeout: TIMEOUT,
        threads: Some(1),
        profile: Arc::new(tessera_tlslp::Profile::default()),
        work_counter: None,
        print_stdout: false,
    };
    assert_eq!(
        connect_and_run(&client, &NoLog).await.unwrap().end,
        SessionEnd::Done
    );
    let report = tokio::time::timeout(TIMEOUT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.done, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_port_connects_is_an_error_after_trying_each_in_order() {
    let server = TestServer::start(Sequence::Tutorial, 0, |_| {}).await;
    let mut options = server.client_options();
    let (_refusing, closed) = crate::util::refusing_port();
    let closed = closed.port();
    options.ports = vec![closed];
    let log = MemoryLog::default();
    assert!(connect_and_run(&options, &log).await.is_err());
    let events = log.events();
    assert_eq!(events[0].level, Level::Warning);
    assert_eq!(
        events[0].message,
        format!("Can't connect to 'localhost':{closed}: Failed to connect to localhost:{closed}")
    );
    assert_eq!(
        events[1].message,
        "Not able to connect to any port.  Exiting"
    );
    // The closed port first, then the server's: the session still works.
    options.ports = vec![closed, server.address.port()];
    assert_eq!(
        connect_and_run(&options, &NoLog).await.unwrap().end,
        SessionEnd::Done
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_sessions_in_flight_finish() {
    let mut server = TestServer::start(Sequence::Tutorial, 0, |o| o.shutdown_grace = TIMEOUT).await;
    // A session paused after HELLO (we hold the reply), then shutdown begins.
    let mut raw = server.raw().await;
    let hello = crate::hostile::read_line(&mut raw).await;
    assert_eq!(hello, "HELLO");
    let address = server.address;
    let stop = server.stop.take().unwrap();
    stop.send(()).unwrap();
    // New connections are no longer accepted…
    let refused = tokio::time::timeout(TIMEOUT, async {
        loop {
            if tokio::net::TcpStream::connect(address).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    refused
        .await
        .expect("listener still accepting after shutdown");
    // …but the session in flight completes.
    crate::hostile::finish_tutorial_session(&mut raw).await;
    // Probe connections that raced the shutdown end in the handshake; the held session is done.
    loop {
        let outcome = server.next_record().await.outcome.to_string();
        if outcome == "done" {
            break;
        }
        assert_eq!(outcome, "handshake");
    }
    let report = server.stop().await;
    assert_eq!(report.done, 1);
}
