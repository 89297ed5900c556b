use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000)
}

fn frame(text: &str) -> Vec<u8> {
    format!("2025-11-22T18:19:57.123456789Z {text}").into_bytes()
}

fn texts(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| &l[31..]).collect()
}

#[test]
fn docker_timestamps_parse() {
    let t = parse_rfc3339_utc("2025-11-22T18:19:57.123456789Z");
    assert_eq!(
        t,
        Some(UNIX_EPOCH + Duration::from_nanos(1_763_835_597_123_456_789))
    );
    let t = parse_rfc3339_utc("2025-11-22T18:19:57.5Z");
    assert_eq!(
        t,
        Some(UNIX_EPOCH + Duration::from_millis(1_763_835_597_500))
    );
    assert_eq!(
        parse_rfc3339_utc("2025-11-22T18:19:57Z"),
        Some(UNIX_EPOCH + Duration::from_secs(1_763_835_597))
    );
    for bad in [
        "2025-11-22T18:19:57",
        "2025-13-22T18:19:57Z",
        "x",
        "2025-11-22T18:19:57.1234567890Z",
        "2025-11-22T18:19:57.-1Z",
    ] {
        assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
    }
}

#[test]
fn lines_are_taken_up_to_each_streams_sentinel_in_written_order() {
    let mut buf = LogBuffer::new(1 << 20);
    buf.push_frame(LogStream::Stdout, &frame("one\n"), now());
    buf.push_frame(LogStream::Stderr, &frame("err\n"), now());
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    assert!(!buf.sentinels_seen());
    // A line of the next activation on stdout, before stderr's sentinel.
    buf.push_frame(LogStream::Stdout, &frame("next\n"), now());
    buf.push_frame(LogStream::Stderr, &frame("err2\n"), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    assert!(buf.sentinels_seen());
    let lines = buf.take(1 << 20);
    assert_eq!(
        texts(&lines),
        ["stdout: one", "stderr: err", "stderr: err2"]
    );
    assert_eq!(lines[0], "2025-11-22T18:19:57.123456789Z stdout: one");
    assert!(!buf.sentinels_seen());
    assert_eq!(texts(&buf.take(1 << 20)), ["stdout: next"]);
    assert!(buf.take(1 << 20).is_empty());
}

#[test]
fn a_frame_without_a_timestamp_gets_the_arrival_time() {
    let mut buf = LogBuffer::new(100);
    buf.push_frame(LogStream::Stdout, b"plain\n", now());
    let lines = buf.take(100);
    assert_eq!(lines, [format_line(now(), LogStream::Stdout, "plain")]);
}

#[test]
fn split_frames_join_into_one_line_and_crlf_is_trimmed() {
    let mut buf = LogBuffer::new(200);
    buf.push_frame(LogStream::Stderr, &frame("first half "), now());
    buf.push_frame(LogStream::Stdout, &frame("other\r\n"), now());
    buf.push_frame(LogStream::Stderr, &frame("second half\n"), now());
    assert_eq!(
        texts(&buf.take(200)),
        ["stdout: other", "stderr: first half second half"]
    );
}

#[test]
fn logs_past_the_limit_end_with_one_notice() {
    let mut buf = LogBuffer::new(1 << 20);
    for _ in 0..5 {
        buf.push_frame(LogStream::Stdout, &frame("12345\n"), now());
    }
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    // Each stored line is 44 bytes (`<time padded to 30> stdout: 12345`).
    let lines = buf.take(100);
    assert_eq!(
        texts(&lines),
        [
            "stdout: 12345",
            "stdout: 12345",
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 100 bytes."
        ]
    );
}

#[test]
fn the_buffer_drops_lines_past_its_cap_but_keeps_sentinels() {
    // Room for two waiting lines of 45 stored bytes.
    let mut buf = LogBuffer::new(50);
    for i in 0..1000 {
        buf.push_frame(LogStream::Stdout, &frame(&format!("line {i}\n")), now());
    }
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    assert!(buf.sentinels_seen());
    let lines = buf.take(1 << 20);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(texts(&lines)[..2], ["stdout: line 0", "stdout: line 1"]);
    assert!(lines[2].contains("Logs were truncated"));
    // The budget is back once taken.
    buf.push_frame(LogStream::Stdout, &frame("again\n"), now());
    assert_eq!(texts(&buf.take(1 << 20)), ["stdout: again"]);
}

#[test]
fn a_zero_limit_collects_nothing_but_consumes_the_activation() {
    let mut buf = LogBuffer::new(0);
    buf.push_frame(LogStream::Stdout, &frame("hidden\n"), now());
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    assert!(buf.sentinels_seen());
    assert!(buf.take(0).is_empty());
    assert!(!buf.sentinels_seen());
}

#[test]
fn a_long_unterminated_line_is_bounded() {
    let mut buf = LogBuffer::new(10);
    for _ in 0..100 {
        buf.push_frame(LogStream::Stdout, &frame("0123456789"), now());
    }
    buf.push_frame(LogStream::Stdout, &frame("\n"), now());
    let lines = buf.take(1 << 20);
    assert_eq!(texts(&lines), ["stdout: 01234567890"]);
}

#[test]
fn a_sentinel_that_comes_after_its_activation_was_taken_takes_its_lines_with_it() {
    let mut buf = LogBuffer::new(1 << 20);
    buf.push_frame(LogStream::Stdout, &frame("first\n"), now());
    // Taken without sentinels (they were late).
    assert_eq!(texts(&buf.take(1 << 20)), ["stdout: first"]);
    // The late tail and sentinels of the first activation, then the next.
    buf.push_frame(LogStream::Stdout, &frame("first, late\n"), now());
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stdout, &frame("second\n"), now());
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    assert!(buf.sentinels_seen());
    assert_eq!(texts(&buf.take(1 << 20)), ["stdout: second"]);
}

#[test]
fn empty_lines_are_charged_what_they_take_stored() {
    let limit = 10_000;
    let mut buf = LogBuffer::new(limit);
    for _ in 0..10_000 {
        buf.push_frame(LogStream::Stdout, &frame("\n"), now());
    }
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    let lines = buf.take(limit);
    let (notice, kept) = lines.split_last().expect("lines");
    let stored: usize = kept.iter().map(String::len).sum();
    assert!(stored <= limit, "{stored} bytes stored past {limit}");
    assert_eq!(kept.len(), limit / stored_line_bytes(0));
    assert!(notice.ends_with(&format!("exceeds the limit of {limit} bytes.")));
}

#[test]
fn lines_past_the_line_cap_are_dropped_with_one_notice() {
    let mut buf = LogBuffer::new(usize::MAX);
    for _ in 0..MAX_LOG_LINES + 10 {
        buf.push_frame(LogStream::Stdout, b"x\n", now());
    }
    buf.push_frame(LogStream::Stdout, &frame(&format!("{SENTINEL}\n")), now());
    buf.push_frame(LogStream::Stderr, &frame(&format!("{SENTINEL}\n")), now());
    let lines = buf.take(usize::MAX);
    assert_eq!(lines.len(), MAX_LOG_LINES + 1);
    assert_eq!(
        texts(&lines).last().copied(),
        Some(
            "stderr: Logs were truncated because the number of lines exceeds the limit of 100000 lines."
        )
    );
    // The count is back once taken.
    buf.push_frame(LogStream::Stdout, &frame("again\n"), now());
    assert_eq!(texts(&buf.take(1 << 20)), ["stdout: again"]);
}
