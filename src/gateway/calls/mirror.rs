//! Answering a re-INVITE with the current media, directions mirrored, until the bridge
//! renegotiates.

/// Our last SDP answered to `offer` with the media direction mirrored (RFC 3264 section
/// 6.1: sendonly -> recvonly, recvonly -> sendonly, inactive -> inactive, else sendrecv),
/// and the `o=` version incremented because the session changed (section 8).
///
/// The direction is taken from the offer's first direction attribute (session or media
/// level) and applied to every media section of ours: enough for the single audio/video
/// sessions a hold or unhold re-INVITE concerns.
///
/// Temporary copy of the function the sip crate had (issue 10 moves SDP out of sip): the
/// media crate's SDP model takes this over, and this copy goes.
pub(super) fn mirror_direction(local: &str, offer: &str) -> String {
    const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    let offered = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .find(|a| DIRECTIONS.contains(a))
        .unwrap_or("sendrecv");
    let mirrored = match offered {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    };
    let mut out: Vec<String> = Vec::new();
    let mut in_media = false;
    for line in local.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(attr) = line.strip_prefix("a=") {
            if DIRECTIONS.contains(&attr) {
                continue;
            }
        }
        if line.starts_with("m=") {
            if in_media {
                out.push(format!("a={mirrored}"));
            }
            in_media = true;
        }
        if let Some(origin) = line.strip_prefix("o=") {
            let mut fields: Vec<String> = origin.split(' ').map(str::to_owned).collect();
            if let Some(version) = fields.get_mut(2) {
                if let Ok(v) = version.parse::<u64>() {
                    *version = v.wrapping_add(1).to_string();
                }
            }
            out.push(format!("o={}", fields.join(" ")));
            continue;
        }
        out.push(line.to_owned());
    }
    if in_media {
        out.push(format!("a={mirrored}"));
    }
    let mut text = out.join("\r\n");
    text.push_str("\r\n");
    text
}

#[cfg(test)]
mod tests {
    use super::mirror_direction;

    #[test]
    fn mirror_direction_answers_hold_with_recvonly_and_bumps_version() {
        let local = "v=0\r\no=- 1 5 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
        let hold = "v=0\r\no=x 9 9 IN IP4 5.6.7.8\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n";
        let answer = mirror_direction(local, hold);
        assert!(answer.contains("o=- 1 6 IN IP4 1.2.3.4\r\n"), "{answer}");
        assert_eq!(answer.matches("a=recvonly").count(), 2, "{answer}");
        assert!(!answer.contains("sendrecv"));
        let unhold = "v=0\r\nm=audio 5000 RTP/AVP 0\r\n";
        assert_eq!(
            mirror_direction(local, unhold)
                .matches("a=sendrecv")
                .count(),
            2
        );
        assert!(mirror_direction(local, "a=inactive\r\n").contains("a=inactive"));
    }
}
