"""The ACL evaluator against Vault's documented matching rules and the cases of its source.

Sources: the "Policies" concept page of Vault's documentation (website/content/docs/concepts/policies.mdx:
the path examples and the five priority rules), vault/acl.go (``NewACL``: same path merged, deny
wins; ``AllowOperation``: exact first, LIST's trailing slash; ``CheckAllowedFromNonExactPaths`` and the
comments of its priority comparison; ``resolveACLPermsForListOp``), vault/policy.go (``parsePaths``:
``+*`` refused, leading ``/`` stripped) and vault/policy_store.go (``defaultPolicy``).
"""

from __future__ import annotations

import pytest

from vaultmodel.vault_acl import (
    CAPABILITIES,
    DEFAULT_POLICY_NAME,
    Acl,
    PathRule,
    PolicyParseError,
    default_rules,
    parse_rules,
)


def acl(*policies: dict[str, list[str]]) -> Acl:
    """An ACL of ``policies`` (each a mapping path -> capabilities), named p0, p1, ..."""
    return Acl({f"p{index}": [PathRule(path, tuple(caps)) for path, caps in policy.items()]
                for index, policy in enumerate(policies)})


class TestDocumentedPaths:
    @pytest.mark.parametrize(("pattern", "path", "allowed"), [
        # "Permit reading only secret/foo. An attached token cannot read secret/food or secret/foo/bar."
        ("secret/foo", "secret/foo", True),
        ("secret/foo", "secret/food", False),
        ("secret/foo", "secret/foo/bar", False),
        # "could read secret/bar/zip, secret/bar/zip/zap, but not secret/bars/zip"
        ("secret/bar/*", "secret/bar/zip", True),
        ("secret/bar/*", "secret/bar/zip/zap", True),
        ("secret/bar/*", "secret/bars/zip", False),
        ("secret/bar/*", "secret/bar", False),
        # "could read secret/zip-zap or secret/zip-zap/zong, but not secret/zip/zap"
        ("secret/zip-*", "secret/zip-zap", True),
        ("secret/zip-*", "secret/zip-zap/zong", True),
        ("secret/zip-*", "secret/zip/zap", False),
        # "if you define a policy for secret/foo*, the policy would also match secret/foobar"
        ("secret/foo*", "secret/foobar", True),
        # "+" is one segment: "the teamb path under any top-level path under secret/"
        ("secret/+/teamb", "secret/foo/teamb", True),
        ("secret/+/teamb", "secret/foo/bar/teamb", False),
        ("secret/+/teamb", "secret/teamb", False),
        ("secret/+/+/teamb", "secret/foo/bar/teamb", True),
        ("secret/+/+/teamb", "secret/foo/teamb", False),
        # "+" with a trailing glob: that many segments, then anything
        ("secret/+/teamb/*", "secret/foo/teamb/x/y", True),
        ("secret/+/teamb/*", "secret/foo/teamb", False),
        ("secret/+/team*", "secret/foo/teamb/x", True),
        ("+", "secret", True),
        ("+", "secret/foo", False),
        ("*", "anything/at/all", True),
    ])
    def test_matching(self, pattern: str, path: str, allowed: bool) -> None:
        assert acl({pattern: ["read"]}).allows("read", path) is allowed

    def test_deny_by_default(self) -> None:
        assert acl().capabilities("secret/foo") == frozenset()
        assert not acl({"secret/foo": ["read"]}).allows("update", "secret/foo")

    def test_the_documented_deny_example(self) -> None:
        # secret/* grants everything; "this line explicitly denies secret/super-secret. This takes precedence."
        policy = acl({"secret/*": ["create", "read", "update", "patch", "delete", "list"],
                      "secret/super-secret": ["deny"]})
        assert policy.allows("read", "secret/other")
        assert policy.capabilities("secret/super-secret") == frozenset()
        assert policy.grant("secret/super-secret").denied

    def test_a_leading_slash_is_ignored(self) -> None:
        assert acl({"/secret/foo": ["read"]}).allows("read", "/secret/foo")

    def test_plus_star_is_refused_as_vault_refuses_it(self) -> None:
        with pytest.raises(ValueError, match=r"'\+\*' is forbidden"):
            acl({"secret/+*": ["read"]})

    def test_unknown_capability_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="not a Vault capability"):
            acl().allows("write", "secret/foo")


class TestSamePathInSeveralPolicies:
    def test_union_of_capabilities(self) -> None:
        policy = acl({"secret/foo": ["read"]}, {"secret/foo": ["update"]})
        assert policy.capabilities("secret/foo") == {"read", "update"}
        assert policy.grant("secret/foo").policies == ("p0", "p1")

    @pytest.mark.parametrize("order", [0, 1])
    def test_deny_in_any_policy_wins_whatever_the_order(self, order: int) -> None:
        policies = [{"secret/*": ["read", "sudo"]}, {"secret/*": ["deny"]}]
        assert acl(*policies[order:], *policies[:order]).capabilities("secret/foo") == frozenset()

    def test_deny_does_not_reach_other_patterns(self) -> None:
        # Only the same path merges: a more specific allow elsewhere still decides its own paths.
        policy = acl({"secret/*": ["deny"]}, {"secret/foo": ["read"], "secret/bar/*": ["read"]})
        assert policy.allows("read", "secret/foo")
        assert policy.allows("read", "secret/bar/x")
        assert not policy.allows("read", "secret/baz")


class TestPriority:
    """The documented order, each rule with the examples of acl.go's comments. (Rule 5, the
    lexicographic tie-break, is unreachable between two patterns that match the same path, as
    acl.go says.)"""

    @pytest.mark.parametrize(("winner", "loser", "path"), [
        # an exact path beats any pattern
        ("secret/foo", "secret/*", "secret/foo"),
        ("secret/foo", "secret/+", "secret/foo"),
        # 1. the first wildcard or glob later in the path wins: foo/a* over foo/+, foo/bar/+/baz over foo/+/bar/baz
        ("foo/a*", "foo/+", "foo/abc"),
        ("foo/bar/+/baz", "foo/+/bar/baz", "foo/bar/bar/baz"),
        ("secret/private/*", "secret/*", "secret/private/x"),
        # 2. not ending in *: foo/+/bar over foo/+/ba*, foo/+ over foo/*
        ("foo/+/bar", "foo/+/ba*", "foo/x/bar"),
        ("foo/+", "foo/*", "foo/x"),
        # 3. fewer + segments: the documented secret/* over secret/+/+/foo/*
        ("secret/*", "secret/+/+/foo/*", "secret/a/b/foo/c"),
        ("foo/+/bar/baz", "foo/+/+/baz", "foo/x/bar/baz"),
        # 4. the longer: foo/+/bar/ba* over foo/+/bar/b*
        ("foo/+/bar/ba*", "foo/+/bar/b*", "foo/x/bar/baz"),
    ])
    @pytest.mark.parametrize("winner_allows", [True, False])
    def test_the_higher_priority_pattern_alone_decides(self, winner: str, loser: str, path: str,
                                                         winner_allows: bool) -> None:
        granted, refused = (["read"], ["deny"]) if winner_allows else (["deny"], ["read"])
        policy = acl({winner: granted}, {loser: refused})
        assert policy.allows("read", path) is winner_allows
        assert policy.grant(path).pattern == winner

    def test_longest_prefix_among_globs(self) -> None:
        policy = acl({"secret/*": ["read"], "secret/data/*": ["deny"], "secret/data/app/*": ["update"]})
        assert policy.capabilities("secret/other") == {"read"}
        assert policy.capabilities("secret/data/other") == frozenset()
        assert policy.capabilities("secret/data/app/x") == {"update"}


class TestList:
    def test_vault_appends_a_slash_and_an_exact_rule_without_it_applies(self) -> None:
        # hashicorp/vault#5197: "If there is no exact rule with a slash at the end when doing a list,
        # we look to see if there is a rule without it".
        assert acl({"secret/metadata": ["list"]}).allows("list", "secret/metadata")
        assert acl({"secret/metadata/": ["list"]}).allows("list", "secret/metadata")

    def test_a_wildcard_without_the_slash_matches_a_list(self) -> None:
        # hashicorp/vault#23874 (VAULT-3825): "+/sys/policies/acl" must allow LIST like "foo/sys/policies/acl".
        assert acl({"+/sys/policies/acl": ["list"]}).allows("list", "ns1/sys/policies/acl")

    def test_a_more_specific_deny_is_not_bypassed_by_listing(self) -> None:
        # resolveACLPermsForListOp: "a more-specific deny policy must not be bypassed by a broader
        # allow reachable only via the trimmed path".
        policy = acl({"foo/metadata/*": ["list"], "foo/metadata/private/*": ["deny"]})
        assert policy.allows("list", "foo/metadata/public")
        assert not policy.allows("list", "foo/metadata/private")
        assert not policy.allows("list", "foo/metadata/private/app")

    def test_a_more_specific_grant_without_list_does_not_hide_a_list_grant(self) -> None:
        policy = acl({"foo/*": ["list"], "foo/bar/*": ["read"]})
        assert policy.allows("list", "foo/bar")


class TestBuiltInPolicies:
    def test_root_allows_everything(self) -> None:
        root = Acl({"root": []})
        assert all(root.allows(capability, "sys/raw/anything") for capability in CAPABILITIES)

    @pytest.mark.parametrize(("capability", "path", "allowed"), [
        ("read", "auth/token/lookup-self", True),
        ("update", "auth/token/renew-self", True),
        ("update", "auth/token/revoke-self", True),
        ("update", "sys/capabilities-self", True),
        ("update", "sys/leases/renew", True),
        ("create", "cubbyhole/my-notes", True),
        ("list", "cubbyhole/", True),
        ("update", "sys/wrapping/wrap", True),
        ("update", "sys/tools/hash/sha2-256", True),
        ("read", "identity/oidc/provider/default/authorize", True),
        ("update", "auth/token/create", False),
        ("read", "secret/data/production/api-service", False),
        ("read", "sys/policies/acl/default", False),
        ("update", "sys/tools/random", False),  # in older versions of the default policy, not in Vault 1.15+
    ])
    def test_the_default_policy(self, capability: str, path: str, allowed: bool) -> None:
        assert Acl({DEFAULT_POLICY_NAME: default_rules()}).allows(capability, path) is allowed

    def test_of_texts_adds_the_default_policy_unless_told_not_to(self) -> None:
        text = 'path "secret/data/app" {\n  capabilities = ["read"]\n}\n'
        with_default = Acl.of_texts({"app": text})
        assert with_default.allows("read", "secret/data/app")
        assert with_default.allows("read", "auth/token/lookup-self")
        assert not Acl.of_texts({"app": text}, default_policy=False).allows("read", "auth/token/lookup-self")


class TestParsing:
    def test_paths_and_capabilities_in_order(self) -> None:
        text = 'path "a/*" {\n  capabilities = ["read", "list"]\n}\npath "b" {\n  capabilities = ["deny"]\n}\n'
        assert parse_rules(text, "x") == (PathRule("a/*", ("read", "list")), PathRule("b", ("deny",)))

    @pytest.mark.parametrize(("text", "words"), [
        ('path "a" { capabilities = ["write"] }', "capabilities ['write'] must be some of"),
        ('path "a" { policy = "read" }', "unknown setting 'policy'"),
        ('path "a" {', "not valid HCL"),
    ])
    def test_what_vault_or_this_project_refuses(self, text: str, words: str) -> None:
        with pytest.raises(PolicyParseError, match=r"^x: ") as refused:
            parse_rules(text, "x")
        assert words in str(refused.value)
