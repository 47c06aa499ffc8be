"""The live view: a web page served by the daemon (`station.web.server.WebService`).

`adapter.AppSource` turns the App's typed `boundary.Snapshot` into the page's
view model and sends the App's own commands; `static/` is the page (plain
HTML/CSS/JS, no build step).  Tests run it over the real App
(tests/station_stub.py) and the real daemon.
"""
