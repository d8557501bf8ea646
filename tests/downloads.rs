//! Downloads of data set files, against a small HTTP server on 127.0.0.1 run by the test (no
//! test touches the internet): a good file, a corrupt one, a truncated one, a wrong checksum, a
//! server error, a server too slow for the time-out. A failed download leaves nothing behind.
#![cfg(feature = "download")]

#[path = "common/datasets.rs"]
mod data_folders;

use data_folders::{DataFolders, fixtures};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};
use strata::datasets::download::download;
use strata::datasets::locate::Checksum;

/// How the server answers.
#[derive(Clone)]
enum Answer {
    /// 200 with the file.
    File(Vec<u8>),
    /// 200 promising the whole file, then only its first half before closing.
    Truncated(Vec<u8>),
    /// 500.
    ServerError,
    /// Headers at once, then nothing for this long.
    Slow(Duration),
}

/// Serves `answer` for every request under `/`; returns the base address.
fn serve(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    request.push(byte[0]);
                }
                let head =
                    |length: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n");
                let _ = match answer {
                    Answer::File(bytes) => stream
                        .write_all(head(bytes.len()).as_bytes())
                        .and_then(|()| stream.write_all(&bytes)),
                    Answer::Truncated(bytes) => stream
                        .write_all(head(bytes.len()).as_bytes())
                        .and_then(|()| stream.write_all(&bytes[..bytes.len() / 2])),
                    Answer::ServerError => stream.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
                    ),
                    Answer::Slow(pause) => {
                        let _ = stream.write_all(head(1000).as_bytes());
                        std::thread::sleep(pause);
                        stream.write_all(&[0; 1000])
                    }
                };
            });
        }
    });
    address
}

fn sha256(bytes: &[u8]) -> &'static str {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    Box::leak(hex.into_boxed_str())
}

/// Nothing in `folder` but what is listed: no partial or temporary file.
fn files_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_good_file_is_downloaded_and_checked() {
    let folders = DataFolders::new("dl-good");
    let bytes = std::fs::read(fixtures().join("imdb.npz")).unwrap();
    let base = serve(Answer::File(bytes.clone()));
    let target = folders.strata.join("imdb.npz");
    download(
        &format!("{base}/imdb.npz"),
        &target,
        Checksum::Sha256(sha256(&bytes)),
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    assert_eq!(files_in(&folders.strata), ["imdb.npz"]);
}

#[test]
fn a_wrong_checksum_deletes_the_download_and_says_so() {
    let folders = DataFolders::new("dl-checksum");
    let bytes = std::fs::read(fixtures().join("imdb.npz")).unwrap();
    let base = serve(Answer::File(bytes));
    let target = folders.strata.join("imdb.npz");
    let error = download(
        &format!("{base}/imdb.npz"),
        &target,
        Checksum::Sha256(sha256(b"other")),
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("checksum mismatch") && error.contains("partial file was deleted"),
        "{error}"
    );
    assert!(error.contains(sha256(b"other")), "{error}");
    assert!(files_in(&folders.strata).is_empty(), "{:?}", files_in(&folders.strata));
}

#[test]
fn a_corrupt_file_fails_its_checksum_end_to_end() {
    // The loader's own checksum (Keras's SHA-256 of the real imdb.npz) refuses a file whose
    // bytes differ: the generated file stands for a corrupted download.
    let folders = DataFolders::new("dl-corrupt");
    let base = serve(Answer::File(std::fs::read(fixtures().join("imdb.npz")).unwrap()));
    unsafe { std::env::set_var("STRATA_DATASETS_URL", &base) };
    let Err(error) = strata::datasets::imdb::load_data(&Default::default()) else {
        panic!("a file with the wrong checksum was loaded");
    };
    let error = error.to_string();
    assert!(
        error.contains("checksum mismatch") && error.contains("69664113"),
        "{error}"
    );
    assert!(error.contains("partial file was deleted"), "{error}");
    assert!(files_in(&folders.strata).is_empty(), "{:?}", files_in(&folders.strata));
}

#[test]
fn a_truncated_download_leaves_nothing() {
    let folders = DataFolders::new("dl-truncated");
    let bytes = std::fs::read(fixtures().join("imdb.npz")).unwrap();
    let base = serve(Answer::Truncated(bytes.clone()));
    let target = folders.strata.join("imdb.npz");
    let error = download(
        &format!("{base}/imdb.npz"),
        &target,
        Checksum::Sha256(sha256(&bytes)),
        TIMEOUT,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("imdb.npz failed") && error.contains("partial file was deleted"),
        "{error}"
    );
    assert!(files_in(&folders.strata).is_empty(), "{:?}", files_in(&folders.strata));
}

#[test]
fn a_server_error_is_reported_with_its_status() {
    let folders = DataFolders::new("dl-500");
    let base = serve(Answer::ServerError);
    let target = folders.strata.join("imdb.npz");
    let error = download(&format!("{base}/imdb.npz"), &target, Checksum::Unchecked, TIMEOUT)
        .unwrap_err()
        .to_string();
    assert!(error.contains("500"), "{error}");
    assert!(files_in(&folders.strata).is_empty());
}

#[test]
fn a_slow_server_hits_the_time_out() {
    let folders = DataFolders::new("dl-slow");
    let base = serve(Answer::Slow(Duration::from_secs(10)));
    let target = folders.strata.join("imdb.npz");
    let start = Instant::now();
    let error = download(
        &format!("{base}/imdb.npz"),
        &target,
        Checksum::Unchecked,
        Duration::from_millis(300),
    )
    .unwrap_err()
    .to_string();
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert!(
        error.to_lowercase().contains("timeout") || error.contains("timed out"),
        "{error}"
    );
    assert!(files_in(&folders.strata).is_empty());
}

#[test]
fn a_missing_data_set_is_downloaded_extracted_and_loaded() {
    // Fashion-MNIST (Keras checks no checksum for it) from the local server into strata's folder.
    let folders = DataFolders::new("dl-fashion");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&request).to_string();
            let name = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let bytes = std::fs::read(fixtures().join("fashion-mnist").join(&name)).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&bytes));
        }
    });
    unsafe { std::env::set_var("STRATA_DATASETS_URL", &base) };
    let ((x_train, _), (x_test, _)) = strata::datasets::fashion_mnist::load_data().unwrap();
    assert_eq!(
        (x_train.shape(), x_test.shape()),
        (&[300, 28, 28][..], &[100, 28, 28][..])
    );
    assert_eq!(files_in(&folders.strata.join("fashion-mnist")).len(), 4);
}
