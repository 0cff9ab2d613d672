// personsearch web page: a hit's whole frame with every person indexed in it as a clickable box;
// clicking one searches the index for that person by id (their stored embedding): follow someone
// from hit to hit, across cameras. Uses the helpers and state of app.js (loaded before this file).
"use strict";

const percent = (v) => `${Math.max(0, Math.min(100, v * 100)).toFixed(3)}%`;

async function openViewer(hit) {
  state.viewerHit = hit;
  state.viewerFrame = null;
  $("viewer-img").src = hit.image_url;
  $("viewer-people").replaceChildren();
  $("viewer-caption").textContent = `${place(hit)} · similarity ${hit.similarity.toFixed(3)} · id ${hit.id}`;
  $("viewer").showModal();
  try {
    const frame = await api(`/api/hits/${hit.id}/people`);
    if (state.viewerHit !== hit) return;  // another hit was opened meanwhile
    state.viewerFrame = frame;
    showFramePeople(frame, hit.id);
  } catch (err) {
    showError(`People in this frame: ${err.message}`);
  }
}

function showFramePeople(frame, currentId) {
  const boxes = frame.people.map((person) => {
    const [x1, y1, x2, y2] = person.box;
    const button = element("button", person.id === currentId ? "person current" : "person");
    button.type = "button";
    button.dataset.id = person.id;
    button.title = `search for person ${person.id} (detector ${person.det_score.toFixed(2)})`;
    Object.assign(button.style, {
      left: percent(x1 / frame.width), top: percent(y1 / frame.height),
      width: percent((x2 - x1) / frame.width), height: percent((y2 - y1) / frame.height),
    });
    button.addEventListener("click", () => followPerson(frame, person));
    return button;
  });
  $("viewer-people").replaceChildren(...boxes);
  $("viewer-caption").textContent +=
    ` · ${count(frame.people.length, "person", "people")} here: click one to search for them`;
}

// Show the frame (without boxes) as the query, its indexed people as the canvas's proposals, and
// search by ``person``'s id.
async function followPerson(frame, person) {
  $("viewer").close();
  clearError();
  try {
    const response = await fetch(frame.image_url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await showQueryImage(await response.blob(), `person ${person.id} · ${frame.source}`,
      { width: frame.width, height: frame.height });
    state.people = frame.people.map((p) => ({ box: p.box, score: p.det_score, id: p.id }));
    setBox(person.box.slice(), `indexed #${person.id}`, person.id);
    await runSearch();
  } catch (err) {
    showError(`Search for person ${person.id}: ${err.message}`);
  }
}

async function queryFromViewer() {
  const hit = state.viewerHit;
  try {
    const frame = state.viewerFrame || await api(`/api/hits/${hit.id}/people`);
    await followPerson(frame, frame.people.find((p) => p.id === hit.id));
  } catch (err) {
    showError(`Query from hit: ${err.message}`);
  }
}
