//! Tests of parsing and validation: every mistake is reported with its line, column and meaning.

use super::*;

const GOOD: &str = r#"tenant: acme
name: Acme Garden Supplies
agents:
  - name: writer
    role: Content writer
    plugin: content-writer
    config: { brand_voice: warm }
  - name: analyst
    role: Analytics
    plugin: analytics
automations:
  - name: weekly-post
    agent: writer
    trigger: { cron: "0 9 * * 1", timezone: Europe/Berlin }
    input: { brief: "Spring sale", voice: friendly }
  - name: kpis
    agent: analyst
    trigger: { interval: 15m }
    priority: 10
    overlap: queue
  - name: follow-up
    agent: writer
    trigger: { after: weekly-post }
  - name: launch
    agent: writer
    trigger: { at: "2026-12-01T09:00:00Z" }
  - name: hook
    agent: analyst
    trigger: { webhook: {} }
    catch_up: skip
"#;

fn known() -> Known {
    Known::default()
}

fn error(text: &str) -> String {
    parse(text, &known()).unwrap_err().to_string()
}

#[test]
fn parses_a_full_configuration() {
    let v = parse(GOOD, &known()).unwrap();
    assert_eq!(v.config.tenant, "acme");
    assert_eq!(v.config.agents[0].config["brand_voice"], "warm");
    assert_eq!(v.config.automations[0].input["brief"], "Spring sale");
    assert_eq!(v.config.automations[1].overlap, Overlap::Queue);
    assert_eq!(v.config.automations[2].input, serde_json::json!({}));
    assert!(v.config.automations[2].enabled);
    assert_eq!(
        v.triggers["weekly-post"],
        Trigger::Cron {
            expr: "0 9 * * 1".into(),
            timezone: "Europe/Berlin".into()
        }
    );
    assert_eq!(v.triggers["kpis"], Trigger::Interval { seconds: 900 });
    assert_eq!(
        v.triggers["follow-up"],
        Trigger::After {
            automation: "weekly-post".into()
        }
    );
    assert_eq!(v.triggers["hook"], Trigger::Webhook);
    assert!(matches!(v.triggers["launch"], Trigger::At { .. }));
}

#[test]
fn type_errors_carry_serde_positions() {
    assert_eq!(
        error("tenant: acme\nagents:\n  - name: writer\n    rol: Content writer\n    plugin: x\n"),
        "line 4, column 5: agents[0]: unknown field `rol`, expected one of `name`, `role`, `plugin`, `model`, `instructions`, `config`, `hosts`, `secrets`, `fallbacks`, `budget`, `reports_to`, `delegates_to`, `registries`"
    );
    assert_eq!(
        error("tenant: acme\nagents:\n  - name: writer\n    plugin: x\n"),
        "line 3, column 5: agents[0]: missing field `role`"
    );
    assert_eq!(
        error(
            "tenant: acme\nautomations:\n  - name: a\n    agent: w\n    trigger: {interval: 1m}\n    priority: high\n"
        ),
        "line 6, column 15: automations[0].priority: invalid type: string \"high\", expected i32"
    );
    let syntax = error("tenant: acme\nagents: [\n  {name: x\n");
    assert!(syntax.starts_with("line 4, column 1: "), "{syntax}");
}

#[test]
fn semantic_errors_point_at_the_value() {
    let bad_agent = GOOD.replace(
        "    agent: analyst\n    trigger: { interval: 15m }",
        "    agent: analist\n    trigger: { interval: 15m }",
    );
    assert_eq!(
        error(&bad_agent),
        "line 17, column 12: automations[1].agent: agent `analist` is not defined in this file (agents: analyst, writer)"
    );
    let bad_cron = GOOD.replace("0 9 * * 1", "0 25 * * 1");
    let e = error(&bad_cron);
    assert!(e.starts_with("line 14, column 22: automations[0].trigger.cron: invalid cron expression `0 25 * * 1`: hour: 25 is out of range 0-23"), "{e}");
    let bad_tz = GOOD.replace("Europe/Berlin", "Mars/Base");
    let e = error(&bad_tz);
    assert!(
        e.starts_with("line 14, column 45: automations[0].trigger.timezone:"),
        "{e}"
    );
    assert!(e.contains("Mars/Base"), "{e}");
    let dup = GOOD.replace("  - name: analyst\n", "  - name: writer\n");
    assert_eq!(
        error(&dup),
        "line 8, column 11: agents[1].name: agent `writer` is defined twice"
    );
    let bad_name = GOOD.replace("tenant: acme", "tenant: Acme Corp");
    assert!(error(&bad_name).starts_with("line 1, column 9: tenant: `Acme Corp` is not a valid name"));
    let two = GOOD.replace("{ interval: 15m }", "{ interval: 15m, cron: \"* * * * *\" }");
    assert_eq!(
        error(&two),
        "line 18, column 14: automations[1].trigger: expected exactly one of cron, interval, at, webhook, after, manual; found 2"
    );
    let bad_interval = GOOD.replace("{ interval: 15m }", "{ interval: 0s }");
    assert!(
        error(&bad_interval).starts_with("line 18, column 26: automations[1].trigger.interval:"),
        "{}",
        error(&bad_interval)
    );
    let prio = GOOD.replace("priority: 10", "priority: 1000");
    assert_eq!(
        error(&prio),
        "line 19, column 15: automations[1].priority: priority must be between -100 and 100, got 1000"
    );
}

#[test]
fn completion_chains_must_not_loop() {
    let looped = GOOD.replace(
        "{ cron: \"0 9 * * 1\", timezone: Europe/Berlin }",
        "{ after: follow-up }",
    );
    let e = error(&looped);
    assert!(
        e.ends_with(
            "automations[2].trigger.after: completion triggers form a loop: follow-up → weekly-post → follow-up"
        ),
        "{e}"
    );
    let own = GOOD.replace("{ after: weekly-post }", "{ after: follow-up }");
    assert!(error(&own).ends_with("automations[2].trigger.after: an automation cannot trigger itself"));
    let missing = GOOD.replace("{ after: weekly-post }", "{ after: nothing }");
    assert!(error(&missing).ends_with("automation `nothing` is not defined in this file"));
}

#[test]
fn unknown_plugins_are_refused_when_the_plugin_list_is_known() {
    let known = Known {
        plugins: Some(["content-writer".to_string()].into()),
        models: None,
    };
    let e = parse(GOOD, &known).unwrap_err().to_string();
    assert_eq!(
        e,
        "line 10, column 13: agents[1].plugin: unknown plugin `analytics` (available: content-writer)"
    );
}

#[test]
fn models_fallbacks_and_budgets_are_checked() {
    let known = Known::default().with_models(["gpt-4o-mini".to_string(), "claude-haiku-4-5".to_string()]);
    let file = |agent_extra: &str, tenant_extra: &str| {
        format!("tenant: acme\n{tenant_extra}agents:\n  - name: w\n    role: Writer\n    plugin: p\n{agent_extra}")
    };
    let ok = parse(
        &file(
            "    model: claude-haiku-4-5\n    fallbacks: [gpt-4o-mini]\n    budget: { monthly: 50 }\n",
            "budget: { monthly: 200, per_run: \"2.50\" }\n",
        ),
        &known,
    )
    .unwrap();
    assert_eq!(ok.config.budget.unwrap().per_run, Some(crate::Usd(2_500_000)));
    assert_eq!(
        ok.config.agents[0].budget.unwrap().monthly,
        Some(crate::Usd(50_000_000))
    );
    let e = |a: &str, t: &str| parse(&file(a, t), &known).unwrap_err().to_string();
    assert_eq!(
        e("    model: gpt-9\n", ""),
        "line 6, column 12: agents[0].model: unknown model `gpt-9`: the price book has claude-haiku-4-5, gpt-4o-mini"
    );
    assert_eq!(
        e("    model: gpt-4o-mini\n    fallbacks: [gpt-4o-mini]\n", ""),
        "line 7, column 17: agents[0].fallbacks[0]: model `gpt-4o-mini` is listed twice"
    );
    assert_eq!(
        e("    fallbacks: [gpt-4o-mini]\n", ""),
        "line 6, column 16: agents[0].fallbacks: fallbacks need a `model` to fall back from"
    );
    assert_eq!(
        e("", "budget: { monthly: 0 }\n"),
        "line 2, column 20: budget.monthly: a budget must be more than $0.00"
    );
    assert!(e("", "budget: { monthly: -5 }\n").contains("is not an amount of dollars"));
}

#[test]
fn positions_index_nested_paths() {
    let p = Positions::index(GOOD);
    assert_eq!(p.of("tenant"), (1, 9));
    assert_eq!(p.of("agents[1].plugin"), (10, 13));
    assert_eq!(p.of("automations[0].trigger.timezone"), (14, 45));
    assert_eq!(p.of("automations[0].trigger.nothing"), p.of("automations[0].trigger"));
    assert_eq!(p.of("no.such.path"), (1, 1));
}

#[test]
fn granted_hosts_and_secrets_are_checked() {
    let file = |extra: &str| format!("tenant: acme\nagents:\n  - name: writer\n    role: W\n    plugin: x\n{extra}");
    assert_eq!(
        error(&file("    hosts: [\"ftp://files.example.com\"]\n")),
        "line 6, column 13: agents[0].hosts[0]: invalid host pattern `ftp://files.example.com`: scheme must be http or https (expected scheme://host[:port], e.g. https://api.example.com or https://*.example.com:8443)"
    );
    assert_eq!(
        error(&file("    secrets: [\"Bad Name\"]\n")),
        "line 6, column 15: agents[0].secrets[0]: `Bad Name` is not a valid name: use 1 to 63 lower-case letters, digits and dashes, not starting or ending with a dash"
    );
    assert_eq!(
        error(&file("    config: { secret.crm: x }\n")),
        "line 6, column 13: agents[0].config: keys starting with `secret.` are reserved for granted secrets"
    );
    let ok = parse(
        &file("    hosts: [\"https://api.example.com\", \"http://127.0.0.1:8080\"]\n    secrets: [crm-token]\n"),
        &Known::default(),
    )
    .unwrap();
    assert_eq!(ok.config.agents[0].secrets, vec!["crm-token".to_string()]);
}

#[test]
fn a_stored_trigger_writes_back_to_the_spec_it_came_from() {
    for t in [
        Trigger::Cron {
            expr: "0 9 * * 1".into(),
            timezone: "Europe/Berlin".into(),
        },
        Trigger::Interval { seconds: 5400 },
        Trigger::At {
            time: "2026-12-01T09:00:00Z".into(),
        },
        Trigger::Webhook,
        Trigger::After { automation: "a".into() },
        Trigger::Manual,
    ] {
        assert_eq!(resolve_trigger(&TriggerSpec::from_trigger(&t)).unwrap(), t);
    }
    assert_eq!(
        TriggerSpec::from_trigger(&Trigger::Interval { seconds: 5400 })
            .interval
            .as_deref(),
        Some("1h30m")
    );
}

#[test]
fn the_team_is_a_tree_of_agents_of_the_file() {
    let team = |a: &str, b: &str, c: &str| {
        format!(
            "tenant: acme\nagents:\n  - {{ name: boss, role: Directs, plugin: noop{a} }}\n  - {{ name: a, role: Helps, plugin: noop{b} }}\n  - {{ name: b, role: Helps, plugin: noop{c} }}\n"
        )
    };
    let ok = parse(
        &team("", ", reports_to: boss", ", reports_to: a, delegates_to: [boss]"),
        &known(),
    )
    .unwrap();
    assert_eq!(ok.config.agents[2].reports_to.as_deref(), Some("a"));
    assert_eq!(
        error(&team("", ", reports_to: ghost", "")),
        "line 4, column 55: agents[1].reports_to: agent `ghost` is not defined in this file (agents: a, b, boss)"
    );
    assert_eq!(
        error(&team("", ", reports_to: a", "")),
        "line 4, column 55: agents[1].reports_to: agent `a` cannot report to itself"
    );
    assert_eq!(
        error(&team(", reports_to: b", ", reports_to: boss", ", reports_to: a")),
        "line 3, column 60: agents[0].reports_to: the team must be a tree, but reporting goes round: boss → b → a → boss"
    );
    assert_eq!(
        error(&team("", "", ", delegates_to: [b]")),
        "line 5, column 58: agents[2].delegates_to[0]: agent `b` cannot delegate to itself"
    );
}

#[test]
fn registries_and_their_grants_are_checked() {
    let file = |fields: &str, grant: &str| {
        format!(
            "tenant: acme\nregistries:\n  - name: clients\n    fields: [{fields}]\nagents:\n  - {{ name: crm, role: CRM, plugin: noop, registries: {{ {grant}: write }} }}\n"
        )
    };
    let ok = parse(
        &file("{ name: email, type: string, unique: true }", "clients"),
        &known(),
    )
    .unwrap();
    assert_eq!(ok.config.registries[0].fields[0].kind, crate::FieldType::String);
    assert_eq!(
        error(&file("{ name: email, type: string }", "kpis")),
        "line 6, column 63: agents[0].registries.kpis: registry `kpis` is not defined in this file (registries: clients)"
    );
    assert_eq!(
        error(&file(
            "{ name: email, type: string }, { name: email, type: number }",
            "clients"
        )),
        "line 4, column 53: registries[0].fields[1].name: field `email` is declared twice"
    );
    assert_eq!(
        error(&file("", "clients")),
        "line 4, column 13: registries[0].fields: a registry needs at least one field"
    );
    assert!(error(&file("{ name: email, type: text }", "clients")).contains("unknown variant `text`"));
}

#[test]
fn the_marketing_template_renders_and_checks_its_parameters() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let t = crate::Template::load(&dir, "marketing-agency").unwrap();
    let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let team = t
        .render(&given(&[("company", "Acme Garden"), ("topic", "Spring planting")]))
        .unwrap();
    assert_eq!(team.agents.len(), 5);
    assert_eq!(team.agents[1].config["company"], "Acme Garden");
    assert_eq!(
        team.automations[1].input["brief"],
        "This week at Acme Garden: Spring planting"
    );
    let mut config: TenantConfig = serde_yaml::from_str("tenant: acme\n").unwrap();
    team.merge_into(&mut config);
    let v = crate::validate(config, &known(), &crate::Positions::default()).unwrap();
    assert_eq!(v.config.registries.len(), 2);

    let e = |pairs: &[(&str, &str)]| t.render(&given(pairs)).unwrap_err().to_string();
    assert_eq!(
        e(&[("topic", "Spring")]),
        "parameter `company` is required (Your company's name)"
    );
    assert_eq!(
        e(&[("company", "A"), ("topic", "Spring")]),
        "parameter `company` must match the pattern `[^\\n]{2,80}` (Your company's name), and `A` does not"
    );
    assert_eq!(
        e(&[("company", "Acme"), ("topic", "Spring"), ("colour", "red")]),
        "template `marketing-agency` has no parameter `colour` (its parameters: company, voice, topic, timezone, kpi_url)"
    );
    // A value is text inside the team, never YAML: it cannot add or change anything.
    let sneaky = t.render(&given(&[
        ("company", "X\", hosts: [\"https://evil\"]"),
        ("topic", "Spring"),
    ]));
    assert!(sneaky.is_err() || sneaky.unwrap().agents.iter().all(|a| a.hosts.is_empty()));
    assert_eq!(
        crate::Template::load(&dir, "../etc").unwrap_err().to_string(),
        "no template `../etc`"
    );
}

#[test]
fn every_shipped_template_installs_into_an_empty_tenant() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let all = crate::Template::list(&dir).unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.meta.id.as_str()).collect();
    assert_eq!(ids, ["e-commerce", "marketing-agency", "professional-services"]);
    for t in &all {
        // Every required parameter gets a value that fits a text pattern.
        let given = t
            .meta
            .parameters
            .iter()
            .filter(|p| p.default.is_none())
            .map(|p| (p.name.clone(), "Acme Garden".to_string()))
            .collect();
        let mut config: TenantConfig = serde_yaml::from_str("tenant: acme\n").unwrap();
        t.render(&given).unwrap().merge_into(&mut config);
        crate::validate(config, &known(), &crate::Positions::default())
            .unwrap_or_else(|e| panic!("template {}: {e}", t.meta.id));
    }
}

#[test]
fn an_approval_webhook_needs_a_plain_url_and_a_secret_name() {
    let with = |hook: &str| {
        GOOD.replace(
            "    catch_up: skip\n",
            &format!("    catch_up: skip\n    approval: {{ webhook: {hook} }}\n"),
        )
    };
    parse(
        &with("{ url: \"https://hooks.example.com/approved?x=1\", secret: hook-key }"),
        &known(),
    )
    .unwrap();
    let e = error(&with("{ url: \"ftp://hooks.example.com/x\", secret: hook-key }"));
    assert!(
        e.ends_with(
            "automations[4].approval.webhook.url: `ftp://hooks.example.com/x`: the scheme must be https or http"
        ),
        "{e}"
    );
    let e = error(&with("{ url: \"https://user@hooks.example.com/\", secret: hook-key }"));
    assert!(
        e.contains("must name one host, without user info, wildcards or spaces"),
        "{e}"
    );
    let e = error(&with("{ url: \"https://hooks.example.com/\", secret: \"Bad Name\" }"));
    assert!(e.contains("automations[4].approval.webhook.secret:"), "{e}");
    let e = error(&with("{ url: \"https://hooks.example.com/\" }"));
    assert!(e.contains("missing field `secret`"), "{e}");
}
