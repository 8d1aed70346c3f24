// A whole consult in real browsers against the real binary: a robot page publishes its (fake)
// camera; the booking's doctor, a consultant and an observer (student) log in through the UI and
// join; everyone decodes video; the doctor drives with keys, the on-screen joystick and a gamepad
// and the robot page shows the commands; control is handed off, requested and granted through
// the UI; the e-stop latches on the robot page.
//
// What the SFU must refuse is tried for real: Drive frames written on the `control` data channel
// of an observer's page, of a doctor's page after it lost the lease, and of the driver's page
// while the e-stop is latched. The robot page records every frame that reaches it; each of those
// tests also gets an allowed frame through in the same state, so it fails if the path to the
// robot is broken rather than guarded.
//
// Every test first brings the room into the state it needs (pages joined, who drives, e-stop
// clear) with the fixtures below, so one failing test does not fail the ones after it.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sleep } from '../lib/server.js';
import { seed } from '../lib/seed.js';
import {
  launch, newPage, browserTest, login, until, expectDecoding, screenshot, text,
  layoutProblems, unexpectedPageProblems,
} from '../lib/browser.js';

const DROPPED = 'bedside_control_frames_dropped_total';
/** linear_x of every frame that must never reach the robot. */
const FORBIDDEN_X = 31111;
/** linear_x of the frames that must. */
const ALLOWED_X = 12345;
/**
 * A session's DELETE can lose the race against the peer connection's own close: the SFU already
 * ended the session and answers 404, as documented. Allowed where a test leaves or replaces a page.
 */
const LATE_DELETE = /: HTTP 404 DELETE \/sessions\/[^/]+$/;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof seed>>} */
let world;
/** @type {{robotId: string, credential: string, bookingId: string}} */
let ids;
/** @type {Record<string, import('playwright-core').Page>} */
const pages = {};
/** @type {Record<string, string>} who is who in the room: page name -> username */
const PEOPLE = { doctor: 'dana', consultant: 'chen', observer: 'sam' };

before(async () => {
  server = await startServer();
  world = await seed(server, {
    users: {
      dana: ['Dr Dana Okafor', 'doctor'],
      chen: ['Dr Chen Wei', 'doctor'],
      sam: ['Sam Student', 'student'],
    },
    robots: { r1: ['Rounds-1', 'Cardiology 3B', 'Tablet robot, bay 2'] },
    bookings: {
      // Started a moment ago, so the booking's doctor may take control at once.
      consult: {
        robot: 'r1', doctor: 'dana', from: Date.now() - 30_000, minutes: 60, note: 'Ward round, bed 4',
        consultants: ['chen'], observers: ['sam'],
      },
    },
  });
  ids = { robotId: world.robots.r1.id, credential: world.robots.r1.credential, bookingId: world.bookings.consult.id };
  browser = await launch();
});

after(async () => {
  const left = unexpectedPageProblems([LATE_DELETE]);
  if (browser) await browser.close();
  if (server) await server.stop();
  if (left.length) throw new Error(`browser problems after the last test:\n  ${left.join('\n  ')}`);
});

// --- the robot page -------------------------------------------------------------------------------

/**
 * From now on, keep every control frame that reaches the robot page (decoded) in
 * `window.__framesSeen`, through the page's own session object.
 * @param {import('playwright-core').Page} robot
 */
async function recordRobotFrames(robot) {
  await robot.evaluate(async () => {
    const w = /** @type {any} */ (window);
    if (w.__framesSeen) return;
    const { decode } = await import('/js/control_frame.js');
    w.__framesSeen = [];
    w.__bedside.session.addEventListener('control', (/** @type {CustomEvent<ArrayBuffer>} */ e) => {
      try {
        w.__framesSeen.push(decode(e.detail));
      } catch (err) {
        w.__framesSeen.push({ malformed: String(err) });
      }
    });
  });
}

/**
 * The frames the robot page received since `from` (an earlier length).
 * @param {import('playwright-core').Page} robot
 * @param {number} [from]
 * @returns {Promise<any[]>}
 */
async function robotFrames(robot, from = 0) {
  return robot.evaluate((i) => /** @type {any} */ (window).__framesSeen.slice(i), from);
}

/** @param {import('playwright-core').Page|undefined} page */
async function robotConnected(page) {
  if (!page || page.isClosed()) return false;
  return (await page.getAttribute('#conn-state', 'data-state', { timeout: 1000 }).catch(() => null)) === 'connected';
}

/** The publishing robot page; started from a `#room=…&token=…` link if there is none. */
async function robotPage() {
  if (!(await robotConnected(pages.robot))) {
    if (pages.robot) await pages.robot.context().close();
    const robot = await newPage(browser, { name: 'robot' });
    const t = await server.publishToken(ids.robotId, ids.credential);
    await robot.goto(`${server.base}/robot#room=${ids.robotId}&token=${encodeURIComponent(t.token)}`);
    await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
    pages.robot = robot;
  }
  await recordRobotFrames(pages.robot);
  return pages.robot;
}

/**
 * The robot page's current drive command, read from its DOM.
 * @param {import('playwright-core').Page} page
 */
async function robotDrive(page) {
  return {
    x: Number(await page.getAttribute('#drive-x', 'data-value')),
    y: Number(await page.getAttribute('#drive-y', 'data-value')),
    z: Number(await page.getAttribute('#drive-z', 'data-value')),
    reason: await text(page, '#drive-reason'),
    received: Number(await text(page, '#frames-received')),
    obeyed: Number(await text(page, '#frames-obeyed')),
  };
}

// --- the people -----------------------------------------------------------------------------------

/** @param {import('playwright-core').Page} page */
async function sessionState(page) {
  if (page.isClosed()) return null;
  return page.evaluate(() => {
    const b = /** @type {any} */ (window).__bedside;
    return b && b.session ? b.session.state : null;
  }).catch(() => null);
}

/** @param {import('playwright-core').Page} page */
function participantId(page) {
  return page.evaluate(() => /** @type {string} */ (/** @type {any} */ (window).__bedside.session.participantId));
}

/**
 * Log in through the UI and join the booking from "Your bookings".
 * @param {string} name a key of PEOPLE
 */
async function joinAs(name) {
  const page = await newPage(browser, { name });
  // A gamepad the test can move: the Gamepad API has no fake device flag in Chromium.
  await page.addInitScript(() => {
    const pad = { axes: [0, 0, 0, 0], buttons: Array.from({ length: 17 }, () => ({ pressed: false, touched: false, value: 0 })) };
    /** @type {any} */ (window).__pad = pad;
    Object.defineProperty(navigator, 'getGamepads', {
      value: () => [{ id: 'Test pad (standard)', index: 0, connected: true, mapping: 'standard', axes: pad.axes, buttons: pad.buttons, timestamp: performance.now() }],
    });
  });
  pages[name] = page;
  await login(page, server.base, PEOPLE[name]);
  const join = page.locator(`#my-bookings li[data-booking-id="${ids.bookingId}"] button.join`);
  await join.click({ timeout: 15_000 });
  await page.waitForSelector('#remote-video');
  await until(`${name} is connected to the room`, async () => (await sessionState(page)) === 'connected', 30_000);
  return page;
}

/**
 * `name`'s page, in the room: the one there is, or a new one that logs in and joins.
 * @param {string} name
 */
async function person(name) {
  const page = pages[name];
  if (page && !page.isClosed()) {
    // A page that is (re)connecting by itself gets the time to do so; one that left, failed or
    // shows something else is replaced.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const state = await sessionState(page);
      if (state === 'connected') return page;
      if ((state !== 'connecting' && state !== 'reconnecting') || Date.now() > deadline) break;
      await sleep(100);
    }
    await page.context().close();
  }
  return joinAs(name);
}

/** @param {import('playwright-core').Page} page */
async function drives(page) {
  return (await page.getAttribute('#drive-status', 'data-state')) === 'you';
}

/**
 * Send an event on a page's real `events` channel (setting up a state, not what is tested).
 * @param {import('playwright-core').Page} page
 * @param {Record<string, unknown>} ev
 */
async function sendEvent(page, ev) {
  const ok = await page.evaluate((e) => /** @type {any} */ (window).__bedside.session.sendEvent(e), ev);
  assert.ok(ok, `the events channel is open for ${JSON.stringify(ev)}`);
}

/** Nobody holds the lease (an administrator revokes it if someone does). */
async function freeLease() {
  const doctor = await person('doctor');
  if ((await doctor.getAttribute('#drive-status', 'data-state')) === 'nobody') return;
  await world.admin.call('POST', `/api/robots/${ids.robotId}/lease/revoke`);
  await doctor.waitForSelector('#drive-status[data-state="nobody"]');
}

/**
 * Make `name` the driver: the booking's doctor takes the free lease and hands it on if needed.
 * The robot page is up, and shows the new holder.
 * @param {string} name 'doctor' or 'consultant'
 */
async function makeDriver(name) {
  const robot = await robotPage();
  const page = await person(name);
  if (!(await drives(page))) {
    const doctor = await person('doctor');
    await freeLease();
    await sendEvent(doctor, { type: 'request_lease' });
    await doctor.waitForSelector('#drive-status[data-state="you"]');
    if (page !== doctor) {
      await sendEvent(doctor, { type: 'handoff', to: await participantId(page) });
      await page.waitForSelector('#drive-status[data-state="you"]');
    }
  }
  const holder = await participantId(page);
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  return page;
}

/** The e-stop is not latched (the driver clears it if it is). */
async function estopClear() {
  const doctor = await person('doctor');
  const latched = () => doctor.evaluate(() => !!(/** @type {any} */ (window).__bedside.room.estop));
  if (!(await latched())) return;
  const driver = await makeDriver('doctor');
  await sendEvent(driver, { type: 'estop_clear' });
  await until('the e-stop is clear', async () => !(await latched()));
}

// --- frames on the real control channel -----------------------------------------------------------

/**
 * Write one Drive frame on `page`'s own `control` RTCDataChannel. A doctor's page sends it through
 * its DriveSender (`sendAxes` sends whether or not the page thinks it may drive, with the page's
 * own increasing sequence number, so the SFU judges it on the lease and the e-stop, not as
 * stale); an observer's page, which has no DriveSender, through `session.sendControl`.
 * @param {import('playwright-core').Page} page
 * @param {number} x linear_x
 * @returns {Promise<{ok: boolean, seq: number}>} ok: the channel took it
 */
function sendDrive(page, x) {
  return page.evaluate(async (lx) => {
    const w = /** @type {any} */ (window);
    const drive = w.__bedside.drive;
    if (drive) {
      const sent = drive.sent;
      drive.sendAxes(lx, 0, 0);
      return { ok: drive.sent === sent + 1, seq: drive.seq };
    }
    const { encode, driveFrame } = await import('/js/control_frame.js');
    w.__forgedSeq = (w.__forgedSeq || 10_000) + 1;
    const ok = w.__bedside.session.sendControl(encode(driveFrame(w.__forgedSeq, Math.floor(performance.now()), lx, 0, 0)));
    return { ok, seq: w.__forgedSeq };
  }, x);
}

/**
 * Write FORBIDDEN_X frames on `page`'s control channel until the SFU has counted at least three
 * drops for `reason` (the channel is unreliable, so no fixed count is waited for).
 * @param {import('playwright-core').Page} page
 * @param {string} reason the `reason` label of bedside_control_frames_dropped_total
 */
async function forbiddenFramesDropped(page, reason) {
  const before = await server.metric(DROPPED, { reason });
  let sent = 0;
  const dropped = await until(`the SFU drops the frames (${reason})`, async () => {
    const r = await sendDrive(page, FORBIDDEN_X);
    assert.ok(r.ok, 'the page could write to its control channel');
    sent += 1;
    const d = (await server.metric(DROPPED, { reason })) - before;
    return d >= 3 ? d : null;
  });
  assert.ok(dropped <= sent, `no more drops (${dropped}) than frames sent (${sent})`);
  return { sent, dropped };
}

/**
 * Write frames with linear_x = `x` on the driver's control channel until the robot page gets one;
 * returns it. Also the proof that frames sent before it had their chance to arrive.
 * @param {import('playwright-core').Page} driver
 * @param {import('playwright-core').Page} robot
 * @param {number} x
 */
async function robotGets(driver, robot, x) {
  const from = (await robotFrames(robot)).length;
  /** @type {number[]} */
  const seqs = [];
  return until(`the robot receives the driver's frame (x=${x})`, async () => {
    const r = await sendDrive(driver, x);
    if (r.ok) seqs.push(r.seq);
    const frames = await robotFrames(robot, from);
    return frames.find((f) => f.kind === 'drive' && f.linearX === x && seqs.includes(f.seq)) || null;
  });
}

/**
 * @param {any[]} frames
 * @returns {any[]} the ones that must never have arrived
 */
const forbidden = (frames) => frames.filter((f) => f.linearX === FORBIDDEN_X);

// --- tests ----------------------------------------------------------------------------------------

browserTest('the robot page publishes with its id and credential', {
  timeout: 60_000,
  // Provoked: the wrong credential.
  allow: [/^robot: HTTP 401 POST \/api\/robots\/[^/]+\/publish-token$/, LATE_DELETE],
}, async () => {
  if (pages.robot) await pages.robot.context().close();
  const robot = await newPage(browser, { name: 'robot' });
  pages.robot = robot;
  await robot.goto(`${server.base}/robot`);
  await robot.fill('#robot-id', ids.robotId);
  await robot.fill('#robot-credential', 'wrong-credential');
  await robot.click('#robot-start');
  await until('a wrong credential is refused', async () => (await text(robot, '#robot-error')).includes('wrong credential'));
  await robot.fill('#robot-credential', ids.credential);
  await robot.click('#robot-start');
  await robot.waitForSelector('#conn-state[data-state="connected"]', { timeout: 30_000 });
  assert.equal(await text(robot, '#estop-state'), 'E-stop clear');
});

browserTest('doctor, consultant and observer log in, join and all decode video', { timeout: 120_000 }, async () => {
  const robot = await robotPage();
  const doctor = await person('doctor');
  const consultant = await person('consultant');
  const observer = await person('observer');
  for (const [who, page] of /** @type {const} */ ([['doctor', doctor], ['consultant', consultant], ['observer', observer]])) {
    const s = await expectDecoding(page, who);
    assert.ok(s.width > 2 && s.height > 2, `${who} sees a real picture (${s.width}x${s.height})`);
  }
  // Everyone sees the whole room: the robot and three people.
  const everyone = await Promise.all([robot, doctor, consultant, observer].map(participantId));
  for (const [who, page] of /** @type {const} */ ([['doctor', doctor], ['consultant', consultant], ['observer', observer]])) {
    await until(`${who} sees everyone in the room`, async () => {
      const listed = await page.locator('#people li[data-participant]').evaluateAll((els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.participant));
      return everyone.every((id) => listed.includes(id));
    });
  }
  await until('the doctor sees names', async () => (await text(doctor, '#people')).includes('Dr Chen Wei'));
});

browserTest('the observer has no controls at all, not even hidden ones', { timeout: 60_000 }, async () => {
  const observer = await person('observer');
  await observer.waitForSelector('#people li[data-participant]');
  for (const sel of ['#drive-panel', '#estop', '#joystick', '#request-control', '#release-control', '#handoff', '#handoff-to', '#estop-clear']) {
    assert.equal(await observer.locator(sel).count(), 0, `${sel} must not exist for an observer`);
  }
  assert.equal(await observer.evaluate(() => /** @type {any} */ (window).__bedside.drive), null, 'no drive loop either');
  // Doctors have them.
  assert.equal(await (await person('doctor')).locator('#estop').count(), 1);
  assert.equal(await (await person('consultant')).locator('#estop').count(), 1);
});

browserTest('the doctor takes control and drives with the keyboard', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  const doctor = await person('doctor');
  await estopClear();
  await freeLease();
  await doctor.click('#request-control');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  const holder = await participantId(doctor);
  await until('the robot page shows the driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  await screenshot(doctor, 'consult-doctor');

  await doctor.click('#remote-video'); // focus the page, not a form field
  const before = await robotDrive(robot);
  await doctor.keyboard.down('KeyW');
  try {
    const d = await until('the robot drives forward', async () => {
      const r = await robotDrive(robot);
      return r.x > 0 && r.z === 0 ? r : null;
    });
    assert.equal(d.x, 16384, 'W without Shift is half speed');
    assert.equal(d.reason, 'frame');
    // Frames keep coming at the drive rate while the key is held (not just one).
    await until('frames keep arriving while the key is held', async () => (await robotDrive(robot)).obeyed >= before.obeyed + 8);
    await until('still driving', async () => (await robotDrive(robot)).x === 16384);
  } finally {
    await doctor.keyboard.up('KeyW');
  }
  await until('the robot stops on release', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.y === 0 && r.z === 0;
  });
  assert.match(await text(robot, '#drive-log'), /frame\s+x=16384 y=0 z=0/, 'the command is logged on the robot page');
});

browserTest('the doctor drives with the on-screen joystick (pointer events)', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  await estopClear();
  const doctor = await makeDriver('doctor');
  const box = await doctor.locator('#joystick').boundingBox();
  assert.ok(box, 'joystick is on screen');
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await doctor.mouse.move(cx, cy);
  await doctor.mouse.down();
  try {
    // Up and to the right: forward while turning right (clockwise, negative angular z).
    await doctor.mouse.move(cx + box.width * 0.25, cy - box.height * 0.4, { steps: 5 });
    const d = await until('the robot follows the joystick', async () => {
      const r = await robotDrive(robot);
      return r.x > 20000 && r.z < 0 ? r : null;
    });
    assert.ok(d.x > -d.z, `mostly forward (${d.x}, ${d.z})`);
  } finally {
    await doctor.mouse.up();
  }
  await until('the robot stops when the joystick is let go', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.z === 0;
  });
});

browserTest('the doctor drives with a gamepad', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  await estopClear();
  const doctor = await makeDriver('doctor');
  // Left stick pushed forward (axis 1 negative) and right stick to the left (turn left).
  await doctor.evaluate(() => { const p = /** @type {any} */ (window).__pad; p.axes[1] = -0.8; p.axes[2] = -0.5; });
  try {
    await until('the robot follows the gamepad', async () => {
      const r = await robotDrive(robot);
      return r.x > 20000 && r.z > 0 ? r : null;
    });
  } finally {
    await doctor.evaluate(() => { const p = /** @type {any} */ (window).__pad; p.axes[1] = 0.05; p.axes[2] = 0; });
  }
  await until('a resting stick stops the robot', async () => {
    const r = await robotDrive(robot);
    return r.x === 0 && r.z === 0;
  });
});

browserTest('frames and events forged on the observer page never reach the robot', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  await estopClear();
  const doctor = await makeDriver('doctor');
  const observer = await person('observer');
  await screenshot(observer, 'consult-observer');
  const from = (await robotFrames(robot)).length;

  await forbiddenFramesDropped(observer, 'observer');
  // The events it may not send are refused to its face.
  await observer.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__refused = [];
    w.__bedside.session.addEventListener('server-event', (/** @type {CustomEvent<any>} */ e) => {
      if (e.detail.type === 'error') w.__refused.push(e.detail.code);
    });
  });
  await sendEvent(observer, { type: 'estop' });
  await sendEvent(observer, { type: 'request_lease' });
  await until('both events are refused', async () => (await observer.evaluate(() => /** @type {any} */ (window).__refused)).length >= 2);
  assert.deepEqual(await observer.evaluate(() => /** @type {any} */ (window).__refused), ['forbidden', 'forbidden']);

  // The driver's frame, sent after them, arrives: the path to the robot works.
  await robotGets(doctor, robot, ALLOWED_X);
  assert.deepEqual(forbidden(await robotFrames(robot, from)), [], 'the robot received none of the observer\'s frames');
  assert.equal(await robot.getAttribute('#estop-state', 'data-latched'), 'false', 'an observer cannot latch the e-stop');
  assert.ok(await drives(doctor), 'and cannot take the lease');
});

browserTest('control is handed off through the UI, and the old holder\'s frames are dropped', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  await estopClear();
  const doctor = await makeDriver('doctor');
  const consultant = await person('consultant');
  await doctor.selectOption('#handoff-to', { label: 'Dr Chen Wei' });
  await doctor.click('#handoff');
  await consultant.waitForSelector('#drive-status[data-state="you"]');
  await doctor.waitForSelector('#drive-status[data-state="other"]');
  assert.match(await text(doctor, '#drive-status'), /Dr Chen Wei is driving/);
  const holder = await participantId(consultant);
  await until('the robot page shows the new driver', async () => (await robot.getAttribute('#driver', 'data-holder')) === holder);
  assert.equal(await doctor.evaluate(() => /** @type {any} */ (window).__bedside.drive.enabled), false, 'the old holder\'s page stops driving by itself');

  // Its page would not send any more; its channel still can, and the SFU's gate must drop it.
  const from = (await robotFrames(robot)).length;
  await forbiddenFramesDropped(doctor, 'not_holder');
  await robotGets(consultant, robot, ALLOWED_X);
  assert.deepEqual(forbidden(await robotFrames(robot, from)), [], 'the old holder does not drive');

  // The new holder drives with the keys.
  await consultant.click('#remote-video');
  await consultant.keyboard.down('ArrowLeft');
  try {
    await until('the robot turns left for the new holder', async () => (await robotDrive(robot)).z === 16384);
  } finally {
    await consultant.keyboard.up('ArrowLeft');
  }
  await until('and stops', async () => (await robotDrive(robot)).z === 0);
});

browserTest('e-stop through the UI latches on the robot page, drops motion, until the driver clears it', { timeout: 60_000 }, async () => {
  const robot = await robotPage();
  await estopClear();
  const consultant = await makeDriver('consultant');
  const doctor = await person('doctor');
  const observer = await person('observer');
  // Any doctor may press it; here the one who is not driving.
  await doctor.click('#estop');
  await until('the robot page latches', async () => (await robot.getAttribute('#estop-state', 'data-latched')) === 'true');
  assert.equal(await text(robot, '#estop-state'), 'E-STOP LATCHED');
  for (const page of [doctor, consultant, observer]) {
    await page.waitForSelector('#state-banner[data-state="estop"]');
  }
  assert.equal(await doctor.getAttribute('#estop', 'aria-pressed'), 'true');
  assert.ok(await doctor.locator('#estop-clear').isHidden(), 'only the driver can clear');
  await consultant.waitForSelector('#estop-clear:visible');
  await screenshot(consultant, 'consult-estop');

  // While latched the driver's page sends nothing by itself; motion written on its channel
  // anyway is dropped by the SFU, while "hold still" still passes.
  assert.equal(await consultant.evaluate(() => /** @type {any} */ (window).__bedside.drive.enabled), false);
  const from = (await robotFrames(robot)).length;
  await forbiddenFramesDropped(consultant, 'estop_latched');
  const still = await robotGets(consultant, robot, 0);
  assert.deepEqual([still.linearX, still.linearY, still.angularZ], [0, 0, 0]);
  assert.deepEqual(forbidden(await robotFrames(robot, from)), [], 'no motion reached the robot while latched');
  assert.equal((await robotDrive(robot)).x, 0);

  await consultant.click('#estop-clear');
  await until('the robot page clears', async () => (await robot.getAttribute('#estop-state', 'data-latched')) === 'false');
  await doctor.waitForSelector('#state-banner[data-state="live"]', { state: 'attached' });

  // And driving works again.
  await consultant.click('#remote-video');
  await consultant.keyboard.down('KeyW');
  try {
    await until('driving again after the clear', async () => (await robotDrive(robot)).x > 0);
  } finally {
    await consultant.keyboard.up('KeyW');
  }
  await until('stopped', async () => (await robotDrive(robot)).x === 0);
});

browserTest('a doctor asks for control and the driver grants it', { timeout: 60_000 }, async () => {
  await estopClear();
  const consultant = await makeDriver('consultant');
  const doctor = await person('doctor');
  await until('the doctor is offered to request control', async () => (await text(doctor, '#request-control')) === 'Request control');
  await doctor.click('#request-control');
  await doctor.waitForSelector('#request-control:disabled');
  const request = consultant.locator('#lease-requests .request');
  await request.waitFor();
  assert.match(await request.textContent() || '', /Dr Dana Okafor asks for control/);
  await consultant.click('#lease-requests button.primary');
  await doctor.waitForSelector('#drive-status[data-state="you"]');
  await consultant.waitForSelector('#drive-status[data-state="other"]');
  assert.equal(await consultant.locator('#lease-requests .request').count(), 0);
});

browserTest('the consult view is usable on a phone, with the e-stop always on screen', { timeout: 60_000 }, async () => {
  await robotPage();
  const consultant = await person('consultant');
  await consultant.setViewportSize({ width: 390, height: 844 });
  try {
    const take = (await consultant.locator('#request-control').isVisible()) ? '#request-control' : '#release-control';
    assert.deepEqual(await layoutProblems(consultant, ['#remote-video', '#leave', '#estop', '#joystick', take]), [],
      'nothing sticks out, hides or is too small on a 390 px screen');
    // Pinned: wherever the page is scrolled, the e-stop is in view and takes the tap.
    for (const where of ['top', 'bottom']) {
      const hit = await consultant.evaluate((w) => {
        window.scrollTo(0, w === 'top' ? 0 : document.documentElement.scrollHeight);
        const el = /** @type {HTMLElement} */ (document.querySelector('#estop'));
        const r = el.getBoundingClientRect();
        const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return { inView: r.top >= 0 && r.bottom <= window.innerHeight, hit: !!at && el.contains(at) };
      }, where);
      assert.deepEqual(hit, { inView: true, hit: true }, `the e-stop at the ${where} of the page`);
    }
    await screenshot(consultant, 'consult-phone');
  } finally {
    await consultant.setViewportSize({ width: 1280, height: 720 });
  }
});

browserTest('leaving ends the session and the others see it', { timeout: 60_000, allow: [LATE_DELETE] }, async () => {
  await robotPage();
  const doctor = await person('doctor');
  const observer = await person('observer');
  const id = await participantId(observer);
  await until('the doctor sees the observer', async () => (await doctor.locator(`#people li[data-participant="${id}"]`).count()) === 1);
  await observer.click('#leave');
  await observer.waitForSelector('#my-bookings');
  await until('the observer is gone from the doctor\'s list', async () => (await doctor.locator(`#people li[data-participant="${id}"]`).count()) === 0);
  assert.equal(await observer.evaluate(() => /** @type {any} */ (window).__bedside), undefined, 'the consult view is gone');
});
