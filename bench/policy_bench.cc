// Policy decisions per second (issue 5: target >= 100,000/s on one core) for a
// 100-action policy with two deny rules, beside the baseline of what every authorize
// does anyway: the params_hash (RFC 8785 + SHA-256) of the same parameters.
// Single-threaded. Results: docs/performance.md.
#include <benchmark/benchmark.h>

#include <string>

#include "policy/decide.h"

namespace {

using nlohmann::json;
using namespace toani;

json HundredActionPolicy() {
  json actions = json::object();
  for (int i = 0; i < 100; ++i) {
    const std::string n = "svc" + std::to_string(i) + ".op";
    actions[n] = {
        {"agents", {"agent-" + std::to_string(i % 7), "payments-*"}},
        {"connector", "http"},
        {"credential", "cred_" + std::to_string(i)},
        {"request",
         {{"method", "POST"},
          {"url", "https://api" + std::to_string(i) + ".example/v1/accounts/{{account}}/pay"},
          {"query", {{"currency", "{{currency}}"}}},
          {"headers", {{"X-Ref", "{{ref}}"}}},
          {"body", {{"amount", "{{amount}}"}, {"memo", "ref {{ref}}"}}}}},
        {"params",
         {{"type", "object"},
          {"additionalProperties", false},
          {"required", {"account", "currency", "amount", "ref"}},
          {"properties",
           {{"account", {{"type", "string"}, {"pattern", "^[0-9]{8,12}$"}}},
            {"currency", {{"type", "string"}, {"enum", {"EUR", "USD", "GBP"}}}},
            {"amount", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 10000}}},
            {"ref", {{"type", "string"}, {"minLength", 4}, {"maxLength", 36}}}}}}},
        {"egress", {{{"host", "api" + std::to_string(i) + ".example"}}}},
        {"risk_tier", "medium"},
        {"approval", {{"approvers", 1}, {"when", {{"properties", {{"amount", {{"minimum", 5000}}}}}}}}},
        {"time_windows", {{{"days", {"mon", "tue", "wed", "thu", "fri"}}, {"from", "00:00"}, {"to", "24:00"}}}}};
  }
  return {{"policy_id", "bench"},
          {"version", 1},
          {"deny",
           {{{"id", "blocked"}, {"actions", {"svc9*"}}, {"agents", {"*"}},
             {"when", {{"properties", {{"currency", {{"const", "GBP"}}}}}}}},
            {{"id", "interns"}, {"actions", {"*"}}, {"agents", {"intern-*"}}}}},
          {"actions", actions}};
}

const json kParams = {{"account", "12345678"}, {"currency", "EUR"}, {"amount", 120.5}, {"ref", "inv-2026-0042"}};

void BM_PolicyDecision(benchmark::State& state) {
  auto parsed = policy::ParsePolicy(HundredActionPolicy());
  if (!parsed.ok()) {
    state.SkipWithError(parsed.status().message().c_str());
    return;
  }
  const std::vector<policy::Policy> policies{*parsed};
  policy::DecisionRequest req;
  req.tenant = "dev";
  req.agent = "payments-eu";
  req.params = &kParams;
  req.now = *ParseRfc3339("2026-11-23T12:00:00Z");  // a Monday
  policy::DecisionEnv env;  // no limits in this policy: counters are not consulted
  int i = 0;
  for (auto _ : state) {
    req.action = "svc" + std::to_string(i++ % 100) + ".op";
    policy::FullDecision d = policy::Decide(policies, req, env);
    if (!d.allowed()) state.SkipWithError(d.reason.c_str());
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("decisions (100-action policy, allow path)");
}
BENCHMARK(BM_PolicyDecision);

void BM_Baseline_ParamsHash(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(policy::ParamsHash(kParams));
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("baseline: params_hash of the same parameters");
}
BENCHMARK(BM_Baseline_ParamsHash);

}  // namespace

BENCHMARK_MAIN();
