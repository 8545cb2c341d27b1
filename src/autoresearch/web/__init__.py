"""`autoresearch serve`: a read-only web view of a workspace's runs (FastAPI), built on the same
read model as `status --json`. One module per concern: app (assembly, access), data (reading the
stores), api (the JSON routes under /api/), pages (the HTML views); the browser code and pages are
package data in static/. A new view adds its own router module and lists it in app.VIEWS."""
