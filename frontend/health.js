// GET /health in words: which of the database, the broker and the workers are up.

/**
 * hv: HealthPublic ({status, problems, database?: {ok}, broker?: {ok}, workers?: [...]}). Without a token the server
 * sends only status and problems, so the checks are read from the problems' wording.
 */
export function summariseHealth(hv) {
  const workers = hv.workers ?? [];
  const problems = hv.problems ?? [];
  const mentions = (word) => problems.some((p) => String(p).startsWith(word));
  const detailed = Array.isArray(hv.workers);
  const dbOk = hv.database ? hv.database.ok : !mentions("database");
  const brokerOk = hv.broker ? hv.broker.ok : !mentions("broker");
  const noWorkers = detailed ? workers.length === 0 : mentions("no live workers");
  return { workers, alive: workers, dbOk, brokerOk, detailed, noWorkers, ok: dbOk && brokerOk && !noWorkers };
}
