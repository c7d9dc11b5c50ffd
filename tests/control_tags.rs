//! Tags on ElastiCache resources in `ferrocache control` (crates/control/src/tags.rs): the
//! Query actions over HTTP, `Tags` on the Create actions, the group-to-member propagation, the
//! errors; and the AWS CLI and boto3 doing the same.

mod common;

use common::control::{tags, ControlPlane};
use std::process::Command;

const ARN: &str = "arn:aws:elasticache:us-east-1:000000000000";

fn tag_pairs(body: &str) -> Vec<(String, String)> {
    tags(body, "Tag")
        .iter()
        .map(|t| (tags(t, "Key")[0].clone(), tags(t, "Value").first().cloned().unwrap_or_default()))
        .collect()
}

fn list(cp: &ControlPlane, arn: &str) -> Vec<(String, String)> {
    tag_pairs(&cp.ok(&[("Action", "ListTagsForResource"), ("ResourceName", arn)]))
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, x)| (k.to_string(), x.to_string())).collect()
}

fn error(cp: &ControlPlane, params: &[(&str, &str)]) -> (u16, String) {
    let (status, body) = cp.call(params);
    assert_ne!(status, 200, "{:?}: {}", params, body);
    (status, tags(&body, "Code")[0].clone())
}

#[test]
fn tags_on_clusters_and_groups() {
    let cp = ControlPlane::new("tags");
    cp.ok(&[
        ("Action", "CreateCacheCluster"),
        ("CacheClusterId", "web"),
        ("Engine", "memcached"),
        ("Tags.Tag.1.Key", "team"),
        ("Tags.Tag.1.Value", "shop"),
        ("Tags.Tag.2.Key", "env"),
        ("Tags.Tag.2.Value", "dev"),
    ]);
    let web = format!("{}:cluster:web", ARN);
    assert_eq!(list(&cp, &web), pairs(&[("team", "shop"), ("env", "dev")]));
    // Add: a new key appended, an existing one's value replaced; the answer is the whole list.
    let added = cp.ok(&[
        ("Action", "AddTagsToResource"),
        ("ResourceName", &web),
        ("Tags.Tag.1.Key", "env"),
        ("Tags.Tag.1.Value", "prod"),
        ("Tags.Tag.2.Key", "cost-center"),
        ("Tags.Tag.2.Value", ""),
    ]);
    assert!(added.starts_with("<AddTagsToResourceResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><AddTagsToResourceResult><TagList><Tag><Key>team</Key>"), "{}", added);
    assert_eq!(tag_pairs(&added), pairs(&[("team", "shop"), ("env", "prod"), ("cost-center", "")]));
    let removed = cp.ok(&[("Action", "RemoveTagsFromResource"), ("ResourceName", &web), ("TagKeys.member.1", "team")]);
    assert_eq!(tag_pairs(&removed), pairs(&[("env", "prod"), ("cost-center", "")]));
    assert_eq!(
        error(&cp, &[("Action", "RemoveTagsFromResource"), ("ResourceName", &web), ("TagKeys.member.1", "team")]),
        (404, "TagNotFound".into())
    );

    // A replication group's tags reach its member clusters.
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "orders"),
        ("ReplicationGroupDescription", "orders"),
        ("NumCacheClusters", "2"),
        ("Tags.Tag.1.Key", "team"),
        ("Tags.Tag.1.Value", "orders"),
    ]);
    let orders = format!("{}:replicationgroup:orders", ARN);
    assert_eq!(list(&cp, &orders), pairs(&[("team", "orders")]));
    assert_eq!(list(&cp, &format!("{}:cluster:orders-002", ARN)), pairs(&[("team", "orders")]));
    cp.ok(&[
        ("Action", "AddTagsToResource"),
        ("ResourceName", &orders),
        ("Tags.Tag.1.Key", "tier"),
        ("Tags.Tag.1.Value", "gold"),
    ]);
    assert_eq!(list(&cp, &format!("{}:cluster:orders-001", ARN)), pairs(&[("team", "orders"), ("tier", "gold")]));
    cp.ok(&[("Action", "RemoveTagsFromResource"), ("ResourceName", &orders), ("TagKeys.member.1", "team")]);
    assert_eq!(list(&cp, &format!("{}:cluster:orders-001", ARN)), pairs(&[("tier", "gold")]));
    // Cluster mode too.
    cp.ok(&[
        ("Action", "CreateReplicationGroup"),
        ("ReplicationGroupId", "shop"),
        ("ReplicationGroupDescription", "shop"),
        ("NumNodeGroups", "2"),
        ("Tags.Tag.1.Key", "team"),
        ("Tags.Tag.1.Value", "shop"),
    ]);
    assert_eq!(list(&cp, &format!("{}:cluster:shop-0002-001", ARN)), pairs(&[("team", "shop")]));

    // Errors, as ElastiCache answers them.
    for (arn, status, code) in [
        ("not-an-arn", 400, "InvalidARN"),
        ("arn:aws:s3:::bucket", 400, "InvalidARN"),
        ("arn:aws:elasticache:us-east-1:000000000000:widget:x", 400, "InvalidARN"),
        ("arn:aws:elasticache:us-east-1:000000000000:cluster:nope", 404, "CacheClusterNotFound"),
        ("arn:aws:elasticache:eu-west-1:000000000000:cluster:web", 404, "CacheClusterNotFound"),
        ("arn:aws:elasticache:us-east-1:000000000000:replicationgroup:nope", 404, "ReplicationGroupNotFoundFault"),
        ("arn:aws:elasticache:us-east-1:000000000000:snapshot:nope", 404, "SnapshotNotFoundFault"),
    ] {
        assert_eq!(
            error(&cp, &[("Action", "ListTagsForResource"), ("ResourceName", arn)]),
            (status, code.to_string()),
            "{}",
            arn
        );
    }
    assert_eq!(error(&cp, &[("Action", "AddTagsToResource"), ("ResourceName", &web)]).1, "MissingParameter");
    assert_eq!(
        error(
            &cp,
            &[
                ("Action", "AddTagsToResource"),
                ("ResourceName", &web),
                ("Tags.Tag.1.Key", "aws:x"),
                ("Tags.Tag.1.Value", "1")
            ]
        )
        .1,
        "InvalidParameterValue"
    );
    let keys: Vec<(String, String)> = (1..=49)
        .flat_map(|i| {
            [(format!("Tags.Tag.{}.Key", i), format!("k{}", i)), (format!("Tags.Tag.{}.Value", i), "v".into())]
        })
        .collect();
    let mut p: Vec<(&str, &str)> = vec![("Action", "AddTagsToResource"), ("ResourceName", &web)];
    p.extend(keys.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // 2 tags + 49 = 51 > 50: refused, nothing stored.
    assert_eq!(error(&cp, &p), (400, "TagQuotaPerResourceExceeded".into()));
    assert_eq!(list(&cp, &web).len(), 2);
    p.truncate(2 + 2 * 48);
    cp.ok(&p);
    assert_eq!(list(&cp, &web).len(), 50);
    // Deleting a resource takes its tags: a new cluster of the same name starts without.
    cp.ok(&[("Action", "DeleteCacheCluster"), ("CacheClusterId", "web")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cp.call(&[("Action", "DescribeCacheClusters"), ("CacheClusterId", "web")]).0 != 404 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cp.ok(&[("Action", "CreateCacheCluster"), ("CacheClusterId", "web"), ("Engine", "memcached")]);
    assert!(list(&cp, &web).is_empty());
}

#[test]
fn aws_cli_and_boto3_tags() {
    let Some(py) = common::control::shared_venv_python(&[("awscli", "awscli"), ("boto3", "boto3")]) else {
        println!("SKIPPED: could not install the AWS CLI and boto3");
        return;
    };
    let cp = ControlPlane::new("tags-aws");
    let aws = py.parent().unwrap().join("aws");
    let run = |args: &[&str]| {
        let out = Command::new(&aws)
            .args(["elasticache", "--endpoint-url", &cp.url(), "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {:?}: {}", args, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "create-cache-cluster",
        "--cache-cluster-id",
        "cli",
        "--engine",
        "redis",
        "--cache-node-type",
        "cache.t3.micro",
        "--tags",
        "Key=team,Value=a",
        "Key=env,Value=dev",
    ]);
    let arn = format!("{}:cluster:cli", ARN);
    let listed = run(&["list-tags-for-resource", "--resource-name", &arn]);
    assert!(listed.contains("\"Key\": \"team\"") && listed.contains("\"Value\": \"dev\""), "{}", listed);
    run(&["add-tags-to-resource", "--resource-name", &arn, "--tags", "Key=tier,Value=gold"]);
    let removed = run(&["remove-tags-from-resource", "--resource-name", &arn, "--tag-keys", "team", "env"]);
    assert!(removed.contains("tier") && !removed.contains("team"), "{}", removed);
    let script = format!(
        r#"
import boto3
ec = boto3.client("elasticache", endpoint_url="{url}", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
arn = "{arn}"
assert ec.list_tags_for_resource(ResourceName=arn)["TagList"] == [{{"Key": "tier", "Value": "gold"}}]
r = ec.add_tags_to_resource(ResourceName=arn, Tags=[{{"Key": "owner", "Value": "me"}}])
assert [t["Key"] for t in r["TagList"]] == ["tier", "owner"], r
try:
    ec.list_tags_for_resource(ResourceName="{prefix}:cluster:missing")
    raise SystemExit("no error")
except ec.exceptions.CacheClusterNotFoundFault:
    pass
try:
    ec.remove_tags_from_resource(ResourceName=arn, TagKeys=["nope"])
    raise SystemExit("no error")
except ec.exceptions.TagNotFoundFault:
    pass
print("boto3 ok")
"#,
        url = cp.url(),
        arn = arn,
        prefix = ARN
    );
    let out = Command::new(&py).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
