//! Reading back the Prometheus text a node serves on `/metrics`: the value of one sample, or a
//! metric summed over its labels. The bench and the tests read figures this way, so that what
//! they report is what an operator's Prometheus would scrape, through one reader.
//!
//! Not a general parser of the exposition format: it reads what [`crate::metrics`] writes (no
//! timestamps, no escaped quotes in label values) and knows nothing of histogram semantics.

/// The value of the sample written exactly as `name_and_labels` (`name{label="v",...}` in the
/// order the node writes them), or `None` if there is no such line.
pub fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    samples(text).find_map(|(key, value)| (key == name_and_labels).then_some(value))
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP bedside_rtp_packets_out_total RTP packets sent\n\
                        # TYPE bedside_rtp_packets_out_total counter\n\
                        bedside_rtp_packets_out_total{kind=\"video\"} 10\n\
                        bedside_rtp_packets_out_total{kind=\"audio\"} 5\n\
                        bedside_rtp_packets_out_total_extra 100\n\
                        bedside_sessions{role=\"doctor\"} 2\n\
                        broken line\n";

    #[test]
    fn one_sample_by_its_exact_labels() {
        assert_eq!(sample(TEXT, "bedside_sessions{role=\"doctor\"}"), Some(2.0));
        assert_eq!(sample(TEXT, "bedside_sessions{role=\"robot\"}"), None);
        assert_eq!(
            sample(TEXT, "bedside_sessions"),
            None,
            "labels are part of the key"
        );
    }

    #[test]
    fn a_sum_over_labels_only_of_that_metric() {
        assert_eq!(sum(TEXT, "bedside_rtp_packets_out_total"), 15.0);
        assert_eq!(sum(TEXT, "missing"), 0.0);
    }
}
