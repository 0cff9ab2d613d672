// personsearch web page: adapt the index to its own footage (POST /api/adapt), follow its progress,
// stop it. Uses the helpers of app.js (loaded before this file).
"use strict";

const ADAPT_STAGES = { starting: "starting", crops: "reading the tracklets' crops", training: "training",
                       "re-embedding": "embedding the index again" };
const adaptation = { timer: null, running: false };

function describeAdaptation(status) {
  if (status.state === "running") {
    const of = status.total ? ` ${status.done}/${status.total}` : "";
    return `adapting: ${ADAPT_STAGES[status.stage] || status.stage}${of}…`;
  }
  if (status.state === "done") {
    const r = status.report;
    return `adapted: ${count(r.tracklets, "tracklet")}, ${count(r.steps, "step")} (triplet loss ` +
      `${r.first_loss.toFixed(3)} → ${r.last_loss.toFixed(3)}), ${count(r.people, "person", "people")} ` +
      `embedded again in ${Math.round(r.seconds)} s. Searches now use the adapted model.`;
  }
  if (status.state === "failed") return `adaptation failed: ${status.error}`;
  if (status.state === "stopped") return `adaptation stopped: ${status.error}`;
  return "";
}

function showAdaptation(status) {
  const running = status.state === "running";
  $("adapt-start").disabled = running;
  $("adapt-stop").hidden = !running;
  const bar = $("adapt-progress");
  bar.hidden = !running;
  if (running && status.total) {
    bar.max = status.total;
    bar.value = status.done;
  } else {
    bar.removeAttribute("value");  // indeterminate while a stage has not counted yet
  }
  $("adapt-info").textContent = describeAdaptation(status);
  $("adapt-panel").dataset.state = status.state;
}

async function pollAdaptation() {
  clearTimeout(adaptation.timer);
  try {
    const status = await api("/api/adapt");
    showAdaptation(status);
    if (status.state === "running") {
      adaptation.running = true;
      adaptation.timer = setTimeout(pollAdaptation, 1000);
    } else if (adaptation.running) {  // just finished: the index may have a new model
      adaptation.running = false;
      refreshStats();
    }
  } catch (err) {
    showError(`Adaptation: ${err.message}`);
  }
}

async function startAdaptation(event) {
  event.preventDefault();
  clearError();
  const body = new URLSearchParams({ steps: $("adapt-steps").value });
  try {
    showAdaptation(await api("/api/adapt", { method: "POST", body }));
    adaptation.running = true;
    adaptation.timer = setTimeout(pollAdaptation, 500);
  } catch (err) {
    showError(`Adaptation: ${err.message}`);
  }
}

async function stopAdaptation() {
  try {
    await api("/api/adapt", { method: "DELETE" });
    $("adapt-info").textContent = "stopping at the next step…";
  } catch (err) {
    showError(`Stopping the adaptation: ${err.message}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("adapt-form").addEventListener("submit", startAdaptation);
  $("adapt-stop").addEventListener("click", stopAdaptation);
  pollAdaptation();  // one may be running already (started from another page or the API)
});
