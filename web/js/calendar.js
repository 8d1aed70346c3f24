// The home page: the robots, "your bookings" with their Join buttons, and a week calendar of the
// chosen robot where doctors make bookings, see them, cancel them, and invite consultants
// (doctors) and observers (students).
//
// Other doctors' bookings show only as anonymous "Booked" blocks (from /api/robots/{id}/busy):
// the API shows a user only the bookings they take part in. Times are shown in the browser's time
// zone and sent to the API in UTC (RFC 3339).
//
// Not here: joining (consult.js; "Join" only navigates), or the API calls themselves (api.js).

import { api, ApiError, explainError } from './api.js';
import { h, replace, setText, formatDateTime, formatTime, formatHour, formatDuration, toast } from './dom.js';
import { mountRobotStatus } from './robot_status.js';

/** @typedef {import('./api.js').Robot} Robot */
/** @typedef {import('./api.js').Booking} Booking */
/** @typedef {import('./api.js').BusySlot} BusySlot */
/** @typedef {import('./api.js').UserListItem} UserListItem */

/** Joining opens this long before a booking starts (the API's join grace). */
export const JOIN_GRACE_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;
const DURATIONS = [15, 30, 45, 60, 90, 120, 180, 240];
/**
 * The robot last chosen, kept across reloads (an id, nothing personal): a doctor who books the
 * same ward's robot every day finds it chosen.
 */
const ROBOT_KEY = 'bedside.robot';

/** @returns {string|null} */
function rememberedRobot() {
  try {
    return localStorage.getItem(ROBOT_KEY);
  } catch {
    return null;
  }
}

/** @param {string} id */
function rememberRobot(id) {
  try {
    localStorage.setItem(ROBOT_KEY, id);
  } catch {
    // Storage disabled: the choice lasts as long as the page.
  }
}

/**
 * Monday 00:00 local time of the week containing `d`.
 * @param {Date} d
 */
export function weekStart(d) {
  const s = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const dow = (s.getDay() + 6) % 7; // Monday = 0
  s.setDate(s.getDate() - dow);
  return s;
}

/**
 * @param {Date} start
 * @param {number} days
 */
function addDays(start, days) {
  const d = new Date(start);
  d.setDate(d.getDate() + days);
  return d;
}

/** @param {Date} d "2026-11-24" in local time */
function dateValue(d) {
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** @param {Date} d "14:05" in local time */
function timeValue(d) {
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Is the booking's room open for joining at `now`?
 * @param {Booking} b
 * @param {number} now
 */
export function joinable(b, now) {
  return b.status === 'confirmed'
    && now >= Date.parse(b.starts_at) - JOIN_GRACE_MS
    && now < Date.parse(b.ends_at);
}

/**
 * How `userId` takes part in `b`.
 * @param {Booking} b
 * @param {string} userId
 * @returns {'doctor'|'consultant'|'observer'|null}
 */
export function participation(b, userId) {
  if (b.doctor_id === userId) return 'doctor';
  const inv = b.invitations.find((i) => i.user_id === userId);
  return inv ? inv.role : null;
}

/**
 * @param {HTMLElement} main
 * @returns {{destroy: () => void}}
 */
export function mountHome(main) {
  const me = /** @type {import('./api.js').User} */ (api.user);
  const canBook = me.role === 'doctor';
  const canListPeople = me.role === 'doctor' || me.role === 'admin';

  const state = {
    /** @type {Robot[]} */
    robots: [],
    /** @type {string|null} */
    robotId: null,
    week: weekStart(new Date()),
    /** @type {Booking[]} bookings I take part in, upcoming, all robots */
    mine: [],
    /** @type {Booking[]} bookings I take part in, this robot, this week */
    robotBookings: [],
    /** @type {BusySlot[]} */
    busy: [],
    /** @type {string|null} */
    selected: null,
    /** @type {Map<string, UserListItem>} */
    people: new Map(),
    /** @type {UserListItem[]} */
    doctors: [],
    /** @type {UserListItem[]} */
    students: [],
    confirmCancel: false,
  };
  let destroyed = false;

  const robotsList = h('ul', { class: 'list', id: 'robots' });
  const mineList = h('ul', { class: 'list', id: 'my-bookings' });
  const calTitle = h('h2', { id: 'calendar-title' }, 'Calendar');
  const weekLabel = h('span', { class: 'week', id: 'week-label', 'aria-live': 'polite' });
  const calBody = h('div', { id: 'calendar' });
  const details = h('section', { class: 'panel details', id: 'booking-details', 'aria-labelledby': 'details-title' });
  const formSlot = h('div');

  const root = h('div', { class: 'home' },
    h('h1', { class: 'visually-hidden', id: 'home-title' }, 'Bookings and robots'),
    h('div', {},
      h('section', { class: 'panel', 'aria-labelledby': 'mine-title' },
        h('h2', { id: 'mine-title' }, 'Your bookings'), mineList),
      h('section', { class: 'panel', 'aria-labelledby': 'robots-title' },
        h('h2', { id: 'robots-title' }, 'Robots'), robotsList)),
    h('div', {},
      h('section', { class: 'panel', 'aria-labelledby': 'calendar-title' },
        h('div', { class: 'cal-head' },
          calTitle,
          h('div', { class: 'cal-nav' },
            // The visible words are the accessible name (WCAG 2.5.3); the arrows are decoration.
            h('button', { type: 'button', class: 'small', id: 'week-prev', 'aria-label': 'Previous week', onclick: () => shiftWeek(-7) }, h('span', { 'aria-hidden': 'true' }, '‹ '), 'Previous'),
            h('button', { type: 'button', class: 'small', id: 'week-this', onclick: () => { state.week = weekStart(new Date()); loadRobot(); } }, 'This week'),
            h('button', { type: 'button', class: 'small', id: 'week-next', 'aria-label': 'Next week', onclick: () => shiftWeek(7) }, 'Next', h('span', { 'aria-hidden': 'true' }, ' ›')))),
        weekLabel,
        calBody,
        h('div', { class: 'cal-legend' },
          h('span', {}, h('i'), 'Your bookings'),
          h('span', {}, h('i', { class: 'busy' }), 'Booked by someone else'),
          canBook ? h('span', {}, 'Click a free time to fill in the booking form.') : null)),
      h('div', { class: 'side-by-side' }, formSlot, details)));
  main.append(root);

  // --- booking form (doctors) -----------------------------------------------------------------

  // The form says which robot it books, and can change it (the same choice as the robots list).
  const fRobot = h('select', { id: 'book-robot', required: true, onchange: () => chooseRobot(fRobot.value) });
  const fDate = h('input', { type: 'date', id: 'book-date', required: true });
  // Quarter hours written by the page's own clock (formatTime): a native time field follows the
  // browser's interface language instead, which can put "2:00 PM" next to "14:00".
  const fTime = h('select', { id: 'book-time', required: true },
    [...Array(96)].map((_, i) => {
      const t = new Date(2000, 0, 1, Math.floor(i / 4), (i % 4) * 15);
      return h('option', { value: timeValue(t) }, formatTime(t));
    }));
  const fDuration = h('select', { id: 'book-duration' },
    DURATIONS.map((m) => h('option', { value: String(m), selected: m === 60 }, formatDuration(m * 60_000))));
  const fNote = h('textarea', { id: 'book-note', maxlength: '500', placeholder: 'e.g. ward round, bed 4' });
  const fError = h('p', { class: 'error', id: 'book-error', role: 'alert' });
  const fSubmit = h('button', { type: 'submit', class: 'primary', id: 'book-submit' }, 'Book');
  if (canBook) {
    const soon = new Date(Date.now() + 30 * 60_000);
    soon.setMinutes(Math.ceil(soon.getMinutes() / 15) * 15, 0, 0);
    fDate.value = dateValue(soon);
    fTime.value = timeValue(soon);
    formSlot.append(h('form', {
      class: 'panel', id: 'booking-form', 'aria-labelledby': 'form-title',
      onsubmit: (/** @type {SubmitEvent} */ e) => { e.preventDefault(); book(); },
    },
    h('h2', { id: 'form-title' }, 'New booking'),
    h('div', { class: 'field' }, h('label', { for: 'book-robot' }, 'Robot'), fRobot),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'book-date' }, 'Date'), fDate),
      h('div', { class: 'field' }, h('label', { for: 'book-time' }, 'Start'), fTime),
      h('div', { class: 'field' }, h('label', { for: 'book-duration' }, 'Length'), fDuration)),
    h('div', { class: 'field' }, h('label', { for: 'book-note' }, 'Note (optional)'), fNote),
    fError,
    h('div', { class: 'actions' },
      fSubmit,
      h('button', {
        type: 'button',
        id: 'book-now',
        'aria-describedby': 'book-now-hint',
        onclick: () => book(true),
      }, 'Start now')),
    h('p', { class: 'hint', id: 'book-now-hint' }, 'Start now books this robot from this moment, by the server’s clock, for the chosen length.')));
  }

  /**
   * Book the form's slot, or (`now`) from the server's "now" for the chosen length: the
   * browser's clock and the time field's 5-minute steps do not decide when an immediate
   * consult starts.
   * @param {boolean} [now]
   */
  async function book(now = false) {
    fError.textContent = '';
    if (!state.robotId) {
      fError.textContent = 'Choose a robot first: there is none to book yet, or none is chosen.';
      return;
    }
    const minutes = Number(fDuration.value);
    /** @type {{starts_at: string, ends_at: string} | {minutes: number}} */
    let slot = { minutes };
    if (!now) {
      const start = new Date(`${fDate.value}T${fTime.value}`);
      if (Number.isNaN(start.getTime())) {
        fError.textContent = 'Enter a date and a start time.';
        return;
      }
      const end = new Date(start.getTime() + minutes * 60_000);
      slot = { starts_at: start.toISOString(), ends_at: end.toISOString() };
    }
    fSubmit.disabled = true;
    const nowButton = /** @type {HTMLButtonElement|null} */ (formSlot.querySelector('#book-now'));
    if (nowButton) nowButton.disabled = true;
    try {
      const note = fNote.value.trim();
      const b = await api.createBooking({
        robot_id: state.robotId,
        ...slot,
        ...(note ? { note } : {}),
      });
      fNote.value = '';
      toast(`Booked ${robotName(b.robot_id)}, ${formatDateTime(b.starts_at)}–${formatTime(b.ends_at)}`);
      state.selected = b.id;
      state.week = weekStart(new Date(b.starts_at));
      await Promise.all([loadRobot(), loadMine()]);
    } catch (err) {
      fError.textContent = bookingError(err);
    } finally {
      fSubmit.disabled = false;
      if (nowButton) nowButton.disabled = false;
    }
  }

  /** @param {unknown} err */
  function bookingError(err) {
    if (err instanceof ApiError && err.code === 'booking_conflict') {
      const c = err.body && err.body.conflict;
      return c
        ? `That time overlaps another booking (${formatDateTime(c.starts_at)}–${formatTime(c.ends_at)}). Choose another time.`
        : 'That time overlaps another booking. Choose another time.';
    }
    return explainError(err);
  }

  // --- loading ----------------------------------------------------------------------------------

  /** @param {number} days */
  function shiftWeek(days) {
    state.week = addDays(state.week, days);
    loadRobot();
  }

  async function loadPeople() {
    if (!canListPeople) return;
    try {
      const [doctors, students] = await Promise.all([api.users('doctor'), api.users('student')]);
      state.doctors = doctors;
      state.students = students;
      for (const u of [...doctors, ...students]) state.people.set(u.id, u);
      state.people.set(me.id, { id: me.id, display_name: me.display_name, role: me.role });
    } catch {
      // Names are a nicety: without them people show by role.
    }
  }

  async function loadMine() {
    try {
      const from = new Date(Date.now() - 60_000).toISOString();
      state.mine = (await api.bookings({ mine: true, from })).filter((b) => b.status === 'confirmed');
    } catch (err) {
      state.mine = [];
      replace(mineList, h('li', { class: 'error' }, explainError(err)));
      return;
    }
    renderMine();
  }

  async function loadRobot() {
    renderWeekLabel();
    const robotId = state.robotId;
    if (!robotId) {
      replace(calBody, h('p', { class: 'muted' }, state.robots.length ? 'Choose a robot.' : 'No robots yet.'));
      renderDetails();
      return;
    }
    const from = state.week.toISOString();
    const to = addDays(state.week, 7).toISOString();
    try {
      const [bookings, busy] = await Promise.all([
        api.bookings({ robot_id: robotId, from, to }),
        api.busy(robotId, from, to),
      ]);
      if (destroyed || robotId !== state.robotId) return;
      state.robotBookings = bookings;
      state.busy = busy;
    } catch (err) {
      replace(calBody, h('p', { class: 'error' }, explainError(err)));
      return;
    }
    renderCalendar();
    renderDetails();
  }

  async function loadAll() {
    try {
      state.robots = await api.robots();
    } catch (err) {
      replace(robotsList, h('li', { class: 'error' }, explainError(err)));
      return;
    }
    const remembered = rememberedRobot();
    if (!state.robotId && state.robots.length) {
      state.robotId = state.robots.some((r) => r.id === remembered) ? remembered : state.robots[0].id;
    }
    renderRobots();
    await loadPeople();
    await Promise.all([loadMine(), loadRobot()]);
  }

  // --- rendering --------------------------------------------------------------------------------

  /** @param {string} id */
  function robotName(id) {
    const r = state.robots.find((x) => x.id === id);
    return r ? r.name : 'Robot';
  }

  /** @param {string} id */
  function personName(id) {
    if (id === me.id) return `${me.display_name} (you)`;
    const p = state.people.get(id);
    return p ? p.display_name : null;
  }

  /** @param {string} id */
  function chooseRobot(id) {
    if (!state.robots.some((r) => r.id === id)) return;
    state.robotId = id;
    state.selected = null;
    rememberRobot(id);
    renderRobots();
    loadRobot();
  }

  function renderRobots() {
    // The form's robot list follows the robots (rebuilt only when they change: it may be open).
    const key = state.robots.map((r) => `${r.id}=${r.name}`).join('|');
    if (fRobot.dataset.key !== key) {
      fRobot.dataset.key = key;
      replace(fRobot, state.robots.length
        ? state.robots.map((r) => h('option', { value: r.id }, `${r.name} · ${r.ward}`))
        : h('option', { value: '' }, 'No robots yet'));
    }
    fRobot.value = state.robotId || '';
    if (!state.robots.length) {
      replace(robotsList, h('li', { class: 'muted' }, 'No robots are registered yet. An administrator adds them.'));
      return;
    }
    replace(robotsList, state.robots.map((r) => h('li', { class: 'robot-item' },
      h('button', {
        type: 'button',
        'aria-pressed': String(r.id === state.robotId),
        dataset: { robotId: r.id },
        onclick: () => chooseRobot(r.id),
      },
      h('span', { class: 'name' }, r.name),
      h('span', { class: 'ward' }, r.ward),
      r.description ? h('span', { class: 'ward' }, ` · ${r.description}`) : null))));
    calTitle.textContent = state.robotId ? `Calendar · ${robotName(state.robotId)}` : 'Calendar';
  }

  function renderMine() {
    const now = Date.now();
    if (!state.mine.length) {
      replace(mineList, h('li', { class: 'muted' }, canBook ? 'None yet. Choose a robot and book a time.' : 'You are not invited to any upcoming booking.'));
      return;
    }
    replace(mineList, state.mine.map((b) => {
      const role = participation(b, me.id);
      const open = joinable(b, now);
      const opensAt = Date.parse(b.starts_at) - JOIN_GRACE_MS;
      return h('li', { class: 'booking-item', dataset: { bookingId: b.id } },
        h('div', {},
          h('span', { class: 'when' }, `${formatDateTime(b.starts_at)}–${formatTime(b.ends_at)}`), h('br'),
          h('span', {}, robotName(b.robot_id), ' '),
          role ? h('span', { class: `badge ${role}` }, role === 'doctor' ? 'your booking' : role) : null),
        open
          ? h('button', { type: 'button', class: 'primary join', 'aria-label': `Join ${robotName(b.robot_id)} at ${formatTime(b.starts_at)}`, onclick: () => { location.hash = `#/consult/${b.id}`; } }, 'Join')
          : h('span', { class: 'hint' }, opensAt - now < DAY_MS ? `opens in ${formatDuration(opensAt - now)}` : `opens ${formatDateTime(new Date(opensAt))}`));
    }));
  }

  function renderWeekLabel() {
    const end = addDays(state.week, 6);
    setText(weekLabel, `${state.week.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })} – ${end.toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })}`);
  }

  function renderCalendar() {
    const now = Date.now();
    const grid = h('div', { class: 'calendar', role: 'group', 'aria-label': `Bookings of ${robotName(/** @type {string} */ (state.robotId))}, week of ${weekLabel.textContent}` });
    grid.append(h('div', { class: 'cal-corner' }));
    const days = [...Array(7)].map((_, i) => addDays(state.week, i));
    for (const d of days) {
      const today = dateValue(d) === dateValue(new Date());
      grid.append(h('div', { class: `cal-dayname${today ? ' today' : ''}`, 'aria-hidden': 'true' },
        d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' })));
    }
    const scroll = h('div', { class: 'cal-scroll', role: 'group', 'aria-label': 'Hours of the day' });
    const hours = h('div', { class: 'cal-hours', 'aria-hidden': 'true' });
    for (let i = 1; i < 24; i++) {
      hours.append(h('span', { style: `top: calc(${i} * var(--hour))` }, formatHour(i)));
    }
    scroll.append(hours);

    const mine = state.robotBookings;
    const others = state.busy.filter((s) => !mine.some((b) => b.status === 'confirmed'
      && Date.parse(b.starts_at) === Date.parse(s.starts_at) && Date.parse(b.ends_at) === Date.parse(s.ends_at)));
    let firstHour = 24;

    for (const d of days) {
      const dayStart = d.getTime();
      const dayEnd = addDays(d, 1).getTime();
      const col = h('div', {
        class: `cal-day${dayEnd <= now ? ' past' : ''}`,
        role: 'group',
        dataset: { date: dateValue(d) },
        'aria-label': d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long' }),
      });
      if (canBook) {
        col.addEventListener('click', (e) => {
          if (e.target !== col) return;
          const rect = col.getBoundingClientRect();
          const minutes = Math.floor((((e.clientY - rect.top) / rect.height) * 24 * 60) / 15) * 15;
          const t = new Date(dayStart + minutes * 60_000);
          fDate.value = dateValue(t);
          fTime.value = timeValue(t);
          fTime.focus();
        });
      }
      /**
       * @param {string} s
       * @param {string} e
       */
      const place = (s, e) => {
        const a = Math.max(Date.parse(s), dayStart);
        const b = Math.min(Date.parse(e), dayEnd);
        if (b <= a) return null;
        const top = ((a - dayStart) / DAY_MS) * 100;
        const height = ((b - a) / DAY_MS) * 100;
        firstHour = Math.min(firstHour, Math.floor(((a - dayStart) / DAY_MS) * 24));
        return `top: ${top.toFixed(3)}%; height: ${height.toFixed(3)}%`;
      };
      for (const s of others) {
        const style = place(s.starts_at, s.ends_at);
        if (style) {
          col.append(h('div', { class: 'cal-event busy', style, title: `Booked ${formatTime(s.starts_at)}–${formatTime(s.ends_at)}` },
            `Booked ${formatTime(s.starts_at)}`));
        }
      }
      for (const b of mine) {
        const style = place(b.starts_at, b.ends_at);
        if (!style) continue;
        const role = participation(b, me.id);
        const label = `${formatTime(b.starts_at)}–${formatTime(b.ends_at)}${b.status === 'cancelled' ? ' (cancelled)' : ''}`;
        col.append(h('button', {
          type: 'button',
          class: `cal-event${b.status === 'cancelled' ? ' cancelled' : ''}${b.id === state.selected ? ' selected' : ''}`,
          style,
          dataset: { bookingId: b.id },
          // The visible text (times and note) is the start of the accessible name (WCAG 2.5.3).
          'aria-label': `${label}${b.note ? ` ${b.note}` : ''}: ${role && role !== 'doctor' ? `booking where you are ${role}` : 'your booking'}, show details`,
          onclick: () => {
            state.selected = b.id;
            state.confirmCancel = false;
            renderCalendar();
            renderDetails();
          },
        }, label, b.note ? h('br') : null, b.note ? b.note : null));
      }
      if (now >= dayStart && now < dayEnd) {
        col.append(h('div', { class: 'cal-now', style: `top: ${(((now - dayStart) / DAY_MS) * 100).toFixed(3)}%`, 'aria-hidden': 'true' }));
        firstHour = Math.min(firstHour, new Date(now).getHours());
      }
      scroll.append(col);
    }
    grid.append(scroll);
    replace(calBody, grid);
    // Show the interesting part of the day: the first booking, or now, or the working day.
    const hour = firstHour < 24 ? Math.max(0, firstHour - 1) : 7;
    const hourPx = parseFloat(getComputedStyle(grid).getPropertyValue('--hour')) || 34;
    scroll.scrollTop = hour * hourPx;
    // On a phone the week scrolls sideways (app.css): start at today. A box that scrolls must be
    // reachable by keyboard (WCAG 2.1.1), so it takes the focus only then.
    const sideways = grid.scrollWidth > grid.clientWidth + 1;
    grid.tabIndex = sideways ? 0 : -1;
    scroll.tabIndex = scroll.scrollHeight > scroll.clientHeight + 1 ? 0 : -1;
    const today = days.findIndex((d) => dateValue(d) === dateValue(new Date()));
    if (sideways && today > 0) {
      const col = /** @type {HTMLElement} */ (scroll.querySelectorAll('.cal-day')[today]);
      const hoursWidth = hours.getBoundingClientRect().width;
      grid.scrollLeft = Math.max(0, col.getBoundingClientRect().left - grid.getBoundingClientRect().left + grid.scrollLeft - hoursWidth);
    }
  }

  /**
   * Focus `selector` in the booking details, else their heading (made focusable for this).
   * @param {string} selector
   */
  function focusInDetails(selector) {
    if (destroyed) return;
    const wanted = /** @type {HTMLElement|null} */ (details.querySelector(selector));
    const target = wanted && !(/** @type {HTMLButtonElement} */ (wanted).disabled) ? wanted
      : /** @type {HTMLElement|null} */ (details.querySelector('#details-title'));
    if (!target) return;
    // A heading takes the focus from code only (not a tab stop).
    if (!target.matches('button, select, input, textarea, a[href]')) target.tabIndex = -1;
    target.focus();
  }

  function renderDetails() {
    const b = state.robotBookings.find((x) => x.id === state.selected)
      || state.mine.find((x) => x.id === state.selected);
    if (!b) {
      replace(details,
        h('h2', { id: 'details-title' }, 'Booking'),
        h('p', { class: 'muted', id: 'details-empty' }, canBook
          ? 'Select one of your bookings in the calendar to see it, invite people or cancel it.'
          : 'Select a booking you are invited to in the calendar to see when it is and who takes part.'));
      return;
    }
    const now = Date.now();
    const owner = b.doctor_id === me.id;
    const over = Date.parse(b.ends_at) <= now;
    const editable = owner && b.status === 'confirmed' && !over;
    const mayCancel = (owner || me.role === 'admin') && b.status === 'confirmed' && !over;
    const error = h('p', { class: 'error', role: 'alert', id: 'details-error' });

    /**
     * Do `f`, then redraw. The pressed button is redrawn (or gone): focus then goes to
     * `focusNext` in the new details (else their heading) rather than falling to the page.
     * @param {() => Promise<unknown>} f
     * @param {string} focusNext a selector inside the details
     */
    const act = async (f, focusNext) => {
      error.textContent = '';
      try {
        await f();
        await Promise.all([loadRobot(), loadMine()]);
      } catch (err) {
        error.textContent = explainError(err);
      }
      focusInDetails(focusNext);
    };

    const invited = new Set(b.invitations.map((i) => i.user_id));
    const inviteRow = (/** @type {'consultant'|'observer'} */ role, /** @type {UserListItem[]} */ pool) => {
      const candidates = pool.filter((u) => u.id !== me.id && u.id !== b.doctor_id && !invited.has(u.id));
      const id = `invite-${role}`;
      const select = h('select', { id },
        h('option', { value: '' }, candidates.length ? `Choose a ${role === 'consultant' ? 'doctor' : 'student'}…` : 'Nobody left to invite'),
        candidates.map((u) => h('option', { value: u.id }, u.display_name)));
      return h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: id }, role === 'consultant' ? 'Invite a consultant (doctor)' : 'Invite an observer (student)'), select),
        h('div', { class: 'field', style: 'flex: 0 0 auto' },
          h('button', {
            type: 'button',
            id: `${id}-submit`,
            disabled: !candidates.length,
            onclick: () => {
              if (!select.value) {
                error.textContent = `Choose whom to invite as ${role}.`;
                return;
              }
              act(() => api.invite(b.id, select.value, role), `#${id}`).then(() => toast('Invitation sent'));
            },
          }, 'Invite')));
    };

    replace(details,
      h('h2', { id: 'details-title' }, `Booking · ${robotName(b.robot_id)}`),
      h('dl', {},
        h('dt', {}, 'When'), h('dd', { id: 'details-when' }, `${formatDateTime(b.starts_at)}–${formatTime(b.ends_at)}`),
        h('dt', {}, 'Doctor'), h('dd', {}, personName(b.doctor_id) || 'the booking doctor'),
        h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `badge ${b.status}`, id: 'details-status' }, b.status)),
        b.note ? h('dt', {}, 'Note') : null, b.note ? h('dd', {}, b.note) : null),
      h('h3', {}, 'Invited'),
      b.invitations.length
        ? h('ul', { class: 'list invitees', id: 'invitees' }, b.invitations.map((i) => h('li', { dataset: { userId: i.user_id } },
          h('span', {}, personName(i.user_id) || 'Invited user', ' ', h('span', { class: `badge ${i.role}` }, i.role)),
          editable ? h('button', {
            type: 'button',
            class: 'small',
            'aria-label': `Remove ${personName(i.user_id) || 'this person'} from the booking`,
            onclick: () => act(() => api.uninvite(b.id, i.user_id), `#invite-${i.role}`),
          }, 'Remove') : null)))
        : h('p', { class: 'muted', id: 'invitees' }, 'Nobody yet.'),
      editable && canListPeople ? [inviteRow('consultant', state.doctors), inviteRow('observer', state.students)] : null,
      error,
      h('div', { class: 'actions' },
        joinable(b, now) && participation(b, me.id)
          ? h('button', { type: 'button', class: 'primary', id: 'details-join', onclick: () => { location.hash = `#/consult/${b.id}`; } }, 'Join')
          : null,
        mayCancel && !state.confirmCancel
          ? h('button', { type: 'button', class: 'danger', id: 'cancel-booking', onclick: () => { state.confirmCancel = true; renderDetails(); focusInDetails('#cancel-keep'); } }, 'Cancel booking')
          : null,
        mayCancel && state.confirmCancel
          ? [h('span', { class: 'error' }, 'Cancel this booking?'),
            h('button', {
              type: 'button',
              class: 'danger',
              id: 'cancel-confirm',
              onclick: () => { state.confirmCancel = false; act(() => api.cancelBooking(b.id), '#details-title').then(() => toast('Booking cancelled')); },
            }, 'Yes, cancel it'),
            h('button', { type: 'button', id: 'cancel-keep', onclick: () => { state.confirmCancel = false; renderDetails(); focusInDetails('#cancel-booking'); } }, 'Keep it')]
          : null));
  }

  renderWeekLabel();
  renderDetails();
  replace(mineList, h('li', { class: 'muted' }, 'Loading…'));
  loadAll();
  const live = mountRobotStatus(robotsList);
  // Join buttons open by themselves as time passes.
  const timer = setInterval(() => {
    renderMine();
  }, 30_000);

  return {
    destroy() {
      destroyed = true;
      clearInterval(timer);
      live.destroy();
    },
  };
}
