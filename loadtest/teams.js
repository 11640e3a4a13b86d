// k6: N concurrent Godel teams through the REST API.
//
// Each virtual user is one team: it submits one feature intent (Coordinator,
// 3 Workers, Reviewer, Security Reviewer) on its own repository, then polls the
// job until it ends. loadtest/run.py sets the environment below and reads
// k6's --summary-export JSON; it can also be run alone against any Godel:
//
//   k6 run -e API_URL=http://127.0.0.1:7373 -e REPO_ROOT=/srv/repos -e TEAMS=10 loadtest/teams.js
//
// REPO_ROOT/team-<VU> must be a git repository on the *server's* file system.

import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Rate, Trend } from 'k6/metrics';

const API = (__ENV.API_URL || 'http://127.0.0.1:7373').replace(/\/$/, '');
const API_KEY = __ENV.API_KEY || '';
const REPO_ROOT = __ENV.REPO_ROOT;
const TEAMS = parseInt(__ENV.TEAMS || '1', 10);
// Jobs each VU runs back to back; ignored when DURATION is set.
const ITERATIONS = parseInt(__ENV.ITERATIONS || '1', 10);
// With a DURATION (k6 syntax, e.g. 5m) each VU starts a new team as soon as its
// previous one ends, so TEAMS teams are held for that long.
const DURATION = __ENV.DURATION || '';
// Spread the teams' first submissions evenly over this many seconds; 0 submits all at
// once, the harshest case for the API (each submission is serialised by its Python GIL).
const RAMP_SECONDS = parseFloat(__ENV.RAMP_SECONDS || '0');
const POLL_SECONDS = parseFloat(__ENV.POLL_SECONDS || '1');
const JOB_TIMEOUT_S = parseInt(__ENV.JOB_TIMEOUT_S || '600', 10);
const SUBMIT_P95_MS = parseInt(__ENV.SUBMIT_P95_MS || '5000', 10);
const POLL_P95_MS = parseInt(__ENV.POLL_P95_MS || '1000', 10);
const INTENT = __ENV.INTENT || 'Add JWT authentication with rate limiting';
const RUNTIME = __ENV.RUNTIME || 'demo';

if (!REPO_ROOT) {
  throw new Error('set REPO_ROOT: the directory holding team-1 .. team-N repositories');
}

// The end states of a job (TERMINAL in godel/storage/store.py); anything else means keep polling.
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out', 'budget_exceeded', 'changes_requested'];

const submitLatency = new Trend('godel_submit_latency', true);
const pollLatency = new Trend('godel_poll_latency', true);
// Client-observed: from sending POST /jobs to the first poll that sees an end state.
const jobDuration = new Trend('godel_job_duration', true);
// Server-recorded: finished_at - created_at, free of the poll interval's granularity.
const jobServerDuration = new Trend('godel_job_server_duration', true);
const jobsSucceeded = new Counter('godel_jobs_succeeded');
const jobsFailed = new Counter('godel_jobs_failed');
const jobSuccess = new Rate('godel_job_success');

// "Godel holds N teams" means: every job succeeds, no request fails (no 429/5xx),
// and submitting stays fast while the machine is busy running the other teams.
const thresholds = {
  godel_job_success: ['rate==1'],
  godel_jobs_failed: ['count==0'],
  http_req_failed: ['rate==0'],
  godel_submit_latency: [`p(95)<${SUBMIT_P95_MS}`],
  godel_poll_latency: [`p(95)<${POLL_P95_MS}`],
};
if (!DURATION) {
  // Every planned job must have finished, not just those that got to the end.
  thresholds.godel_jobs_succeeded = [`count>=${TEAMS * ITERATIONS}`];
}

export const options = {
  scenarios: {
    teams: DURATION
      ? {
          executor: 'constant-vus',
          vus: TEAMS,
          duration: DURATION,
          gracefulStop: `${JOB_TIMEOUT_S + 30 + RAMP_SECONDS}s`,
        }
      : {
          executor: 'per-vu-iterations',
          vus: TEAMS,
          iterations: ITERATIONS,
          maxDuration: `${(JOB_TIMEOUT_S + 30) * ITERATIONS + RAMP_SECONDS}s`,
        },
  },
  thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
};

const headers = { 'Content-Type': 'application/json' };
if (API_KEY) {
  headers.Authorization = `Bearer ${API_KEY}`;
}

function finish(ok, status, detail) {
  jobSuccess.add(ok);
  (ok ? jobsSucceeded : jobsFailed).add(1);
  if (!ok) {
    console.warn(`VU ${__VU}: job ${status}: ${detail}`);
  }
}

export default function () {
  if (RAMP_SECONDS > 0 && exec.vu.iterationInScenario === 0) {
    sleep((RAMP_SECONDS * (__VU - 1)) / TEAMS);
  }
  const started = Date.now();
  const body = JSON.stringify({
    text: INTENT,
    repo: `${REPO_ROOT}/team-${__VU}`,
    runtime: RUNTIME,
    timeout: JOB_TIMEOUT_S,
  });
  const submitted = http.post(`${API}/api/v1/jobs`, body, { headers, tags: { name: 'POST /jobs' } });
  submitLatency.add(submitted.timings.duration);
  if (!check(submitted, { 'submit 201': (r) => r.status === 201 })) {
    finish(false, `submit HTTP ${submitted.status}`, submitted.body);
    return;
  }
  const jobId = submitted.json('job_id');
  const deadline = started + (JOB_TIMEOUT_S + 30) * 1000;

  while (Date.now() < deadline) {
    sleep(POLL_SECONDS);
    const polled = http.get(`${API}/api/v1/jobs/${jobId}`, { headers, tags: { name: 'GET /jobs/{id}' } });
    pollLatency.add(polled.timings.duration);
    if (polled.status !== 200) {
      continue; // counted by http_req_failed; the job itself may still end well
    }
    const job = polled.json();
    if (!FINAL.includes(job.status)) {
      continue;
    }
    jobDuration.add(Date.now() - started);
    if (job.finished_at) {
      jobServerDuration.add(Date.parse(job.finished_at) - Date.parse(job.created_at));
    }
    check(job, { 'job succeeded': (j) => j.status === 'succeeded' });
    finish(job.status === 'succeeded', job.status, `${jobId} ${job.error || ''}`);
    return;
  }
  finish(false, 'not finished', `${jobId} still running after ${JOB_TIMEOUT_S + 30}s`);
}
