// The status page's behaviour: the Metrics and Status tabs, the relative push times
// ("3 minutes ago", from each span.ago's data-unix in seconds), and deleting groups.
// Groups fold as <details> elements do, without script; handlers are delegated from
// the document, so that a page of thousands of groups costs nothing at load but the
// relative times.
'use strict';

function deleteGroup(path, group) {
  if (!confirm('Do you really want to delete all metrics of group ' + (group || path) + '?')) { return; }
  request('DELETE', path, 'Deleting the group failed');
}

function deleteAllGroups(path) {
  if (!confirm('Do you really want to delete all metrics from all metric groups?')) { return; }
  request('PUT', path, 'Deleting all groups failed');
}

// Reloads the page once the answer has been read whole (a reload while it is still
// arriving would abort it), or says why the request failed.
function request(method, path, failure) {
  fetch(path, { method: method }).then(function (r) {
    return r.text().then(function (t) {
      if (r.ok) { location.reload(); } else { alert(failure + ': ' + r.status + ' ' + t); }
    });
  }).catch(function (e) { alert(failure + ': ' + e); });
}

function ago(unix) {
  var s = Math.max(0, Math.round(Date.now() / 1000 - unix));
  var units = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  if (s < 5) { return 'just now'; }
  for (var i = 0; i < units.length; i++) {
    var n = Math.floor(s / units[i][0]);
    if (n >= 1) { return n + ' ' + units[i][1] + (n === 1 ? '' : 's') + ' ago'; }
  }
  return 'just now';
}

function refreshTimes() {
  var spans = document.querySelectorAll('span.ago[data-unix]');
  for (var i = 0; i < spans.length; i++) {
    spans[i].textContent = '(' + ago(Number(spans[i].getAttribute('data-unix'))) + ')';
  }
}

function showTab() {
  var tab = location.hash === '#status' ? 'status' : 'metrics';
  ['metrics', 'status'].forEach(function (name) {
    document.getElementById(name + '-div').hidden = name !== tab;
    document.getElementById(name + '-li').classList.toggle('active', name === tab);
  });
}

document.addEventListener('click', function (event) {
  var button = event.target.closest('button.del, button#del-all');
  if (!button || button.disabled) { return; }
  // The group's button sits in its panel's header: clicking it must not fold the panel.
  event.preventDefault();
  event.stopPropagation();
  if (button.id === 'del-all') {
    deleteAllGroups(button.getAttribute('data-path'));
  } else {
    deleteGroup(button.getAttribute('data-path'), button.getAttribute('data-group'));
  }
});

document.addEventListener('DOMContentLoaded', function () {
  showTab();
  refreshTimes();
  setInterval(refreshTimes, 30000);
});
window.addEventListener('hashchange', showTab);
