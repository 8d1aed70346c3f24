//! Reading back the Prometheus text a node serves on `/metrics`: the value of one sample, or a
//! metric summed over its labels. The bench and the tests read figures this way, so that what
//! they report is what an operator's Prometheus would scrape, through one reader.
//!
//! A sample is asked for as `name{label="v",...}`, its labels in any order. An absent sample is
//! `None`, never 0: a counter the node has not touched yet and a gauge that reads 0 are
//! different facts, and a test that means "present and zero" must be able to fail on the first.
//!
//! Not a general parser of the exposition format: it reads what [`crate::metrics`] writes (no
//! timestamps, no escaped quotes or commas in label values) and knows nothing of histogram
//! semantics.

/// The value of the sample `name_and_labels` (`name` or `name{label="v",...}`, the labels in
/// any order), or `None` if the text has no such sample (or the key cannot be read).
pub fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    let wanted = Key::parse(name_and_labels)?;
    samples(text).find_map(|(key, value)| (Key::parse(key)? == wanted).then_some(value))
}

/// The sum of every sample of metric `name`, whatever its labels; 0 when there is none.
pub fn sum(text: &str, name: &str) -> f64 {
    samples(text)
        .filter(|(key, _)| key.split('{').next() == Some(name))
        .map(|(_, value)| value)
        .sum()
}

/// Every sample line as (name with labels, value); comments and unreadable lines skipped.
fn samples(text: &str) -> impl Iterator<Item = (&str, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            Some((key, value.parse().ok()?))
        })
}

/// A sample's name and its labels, sorted, so that label order does not matter.
#[derive(Debug, PartialEq, Eq)]
struct Key<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
}

impl<'a> Key<'a> {
    /// `name` or `name{a="x",b="y"}` (a trailing comma allowed, as the format does); `None`
    /// when it is neither.
    fn parse(key: &'a str) -> Option<Key<'a>> {
        let Some((name, rest)) = key.split_once('{') else {
            return (!key.is_empty()).then_some(Key {
                name: key,
                labels: Vec::new(),
            });
        };
        let mut rest = rest.strip_suffix('}')?;
        let mut labels = Vec::new();
        while !rest.is_empty() {
            let (label, after) = rest.split_once("=\"")?;
            let (value, after) = after.split_once('"')?;
            labels.push((label.trim(), value));
            rest = match after.strip_prefix(',') {
                Some(next) => next,
                None if after.is_empty() => after,
                None => return None,
            };
        }
        labels.sort_unstable();
        Some(Key { name, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP bedside_rtp_packets_out_total RTP packets sent\n\
                        # TYPE bedside_rtp_packets_out_total counter\n\
                        bedside_rtp_packets_out_total{kind=\"video\"} 10\n\
                        bedside_rtp_packets_out_total{kind=\"audio\"} 5\n\
                        bedside_rtp_packets_out_total_extra 100\n\
                        bedside_sessions{role=\"doctor\"} 2\n\
                        bedside_sessions{role=\"robot\"} 0\n\
                        bedside_signalling_requests_total{endpoint=\"whep\",status=\"201\"} 7\n\
                        broken line\n";

    #[test]
    fn one_sample_by_its_labels() {
        assert_eq!(sample(TEXT, "bedside_sessions{role=\"doctor\"}"), Some(2.0));
        assert_eq!(
            sample(TEXT, "bedside_sessions{role=\"observer\"}"),
            None,
            "absent is not zero"
        );
        assert_eq!(
            sample(TEXT, "bedside_sessions{role=\"robot\"}"),
            Some(0.0),
            "present and zero"
        );
        assert_eq!(
            sample(TEXT, "bedside_sessions"),
            None,
            "labels are part of the key"
        );
        assert_eq!(
            sample(TEXT, "bedside_rtp_packets_out_total_extra"),
            Some(100.0)
        );
    }

    #[test]
    fn labels_in_any_order() {
        for key in [
            "bedside_signalling_requests_total{endpoint=\"whep\",status=\"201\"}",
            "bedside_signalling_requests_total{status=\"201\",endpoint=\"whep\"}",
            "bedside_signalling_requests_total{status=\"201\",endpoint=\"whep\",}",
        ] {
            assert_eq!(sample(TEXT, key), Some(7.0), "{key}");
        }
        assert_eq!(
            sample(TEXT, "bedside_signalling_requests_total{status=\"201\"}"),
            None,
            "every label must match, not a subset"
        );
        assert_eq!(
            sample(TEXT, "bedside_sessions{role=doctor}"),
            None,
            "unreadable key"
        );
    }

    #[test]
    fn a_sum_over_labels_only_of_that_metric() {
        assert_eq!(sum(TEXT, "bedside_rtp_packets_out_total"), 15.0);
        assert_eq!(sum(TEXT, "missing"), 0.0);
    }
}
