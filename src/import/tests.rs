//! The pushes derived from a file upstream 1.5.1 wrote itself (`testdata/`): a group
//! pushed with `PUT` then `POST`, an empty group, one more group, a group whose last push
//! failed, and a group that only a failed push created.

use super::*;

fn fixture() -> Vec<FileGroup> {
    read_file(include_bytes!("testdata/upstream-1.5.1.gob")).expect("upstream's own file reads")
}

fn group<'a>(groups: &'a [FileGroup], job: &str) -> &'a FileGroup {
    groups.iter().find(|g| g.labels.get("job").map(String::as_str) == Some(job)).expect("group")
}

#[test]
fn every_group_and_family_of_upstreams_file_is_read() {
    let groups = fixture();
    assert_eq!(groups.len(), 5);
    let batch = group(&groups, "batch");
    assert_eq!(batch.labels.get("instance").map(String::as_str), Some("a"));
    let mut names: Vec<&str> = batch.families.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["added_gauge", "h", "push_failure_time_seconds", "push_time_seconds", "s", "some_counter"]);
    assert!(batch.families.iter().all(|(_, t, _)| t.is_some()), "every family carries its push time");
}

#[test]
fn a_group_becomes_the_pushes_that_built_it() {
    let groups = fixture();
    let limits = PushLimits::CEILING;
    let batch = group(&groups, "batch").pushes(&limits).unwrap();
    // The creating PUT, the PUT's three families, the POST's one.
    assert_eq!(batch.len(), 3, "{batch:?}");
    assert!(batch[0].replace && batch[0].families.is_empty());
    assert_eq!(batch[1].families.keys().collect::<Vec<_>>(), ["h", "s", "some_counter"]);
    assert_eq!(batch[2].families.keys().collect::<Vec<_>>(), ["added_gauge"]);
    assert!(batch[1].time < batch[2].time && batch.iter().all(|p| p.defect.is_none()));

    let empty = group(&groups, "empty").pushes(&limits).unwrap();
    assert_eq!(empty.len(), 1);
    assert!(empty[0].replace && empty[0].families.is_empty());

    let failing = group(&groups, "failing").pushes(&limits).unwrap();
    let last = failing.last().unwrap();
    assert_eq!(last.defect.as_deref(), Some(FAILURE_RECORD), "the last failure is recorded");
    assert!(last.time > failing[0].time);
    assert!(failing[..failing.len() - 1].iter().all(|p| p.defect.is_none()));

    let never = group(&groups, "neverok").pushes(&limits).unwrap();
    assert_eq!(never.len(), 1, "created by its failure, nothing else: {never:?}");
    assert!(never[0].defect.is_some() && never[0].families.is_empty());
}

#[test]
fn a_group_over_the_push_limits_is_refused_by_name() {
    let groups = fixture();
    let tight = PushLimits { series: 1, ..PushLimits::CEILING };
    let err = group(&groups, "batch").pushes(&tight).unwrap_err();
    assert!(matches!(err, ImportError::Group { .. }), "{err}");
}

#[test]
fn other_files_are_refused_not_misread() {
    assert!(matches!(read_file(b"# TYPE x counter\nx 1\n"), Err(ImportError::Gob(_))));
    assert!(read_file(&[]).is_err());
}
