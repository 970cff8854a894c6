package api

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/room"
)

// pipeline serves the manager's view (room.Service.Pipeline) in one
// answer: JSON, or with format=csv one row per room, written as it goes.
func (s *Server) pipeline(c echo.Context) error {
	f := room.PipelineFilter{Stage: room.Stage(c.QueryParam("stage")), Owner: c.QueryParam("owner"),
		CloseWindow: room.CloseWindow(c.QueryParam("close_window")), Engagement: room.Signal(c.QueryParam("engagement"))}
	if raw, present, err := queryValue(c, "quiet_days"); err != nil {
		return err
	} else if present {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > 365 {
			return dealroom.Invalid("quiet_days", "quiet_days must be a whole number of days from 0 to 365")
		}
		f.QuietDays = &n
	}
	format, _, err := queryValue(c, "format")
	if err != nil {
		return err
	}
	if format != "" && format != "json" && format != "csv" {
		return dealroom.Invalid("format", "format must be json or csv")
	}
	p, err := s.svc.Pipeline(c.Request().Context(), actor(c), f)
	if err != nil {
		return err
	}
	if format != "csv" {
		return c.JSON(http.StatusOK, p)
	}
	return writePipelineCSV(c, p)
}

// pipelineColumns are the header of the pipeline's CSV.
var pipelineColumns = []string{"room_id", "room", "company", "owner", "stage", "value", "currency",
	"close_window", "close_by", "close_window_moves", "close_window_slips",
	"next_step", "next_step_due", "next_step_commitment",
	"steps", "dated", "on_time", "slipped", "unconfirmed", "overdue", "health_score",
	"last_customer_activity_at", "quiet", "engagement"}

// writePipelineCSV writes the cards as CSV (RFC 4180: quoted where
// needed, CRLF line ends), flushing every 100 rows.
func writePipelineCSV(c echo.Context, p *room.Pipeline) error {
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	res.Header().Set(echo.HeaderContentDisposition, `attachment; filename="pipeline-`+p.AsOf.String()+`.csv"`)
	res.WriteHeader(http.StatusOK)
	w := csv.NewWriter(res)
	w.UseCRLF = true
	if err := w.Write(pipelineColumns); err != nil {
		return err
	}
	for i := range p.Cards {
		if err := w.Write(csvRow(&p.Cards[i])); err != nil {
			return err
		}
		if i%100 == 99 {
			w.Flush()
			res.Flush()
		}
	}
	w.Flush()
	return w.Error()
}

// csvRow is one card as a row of pipelineColumns, every cell guarded.
func csvRow(cd *room.Card) []string {
	r := &cd.Room
	num := strconv.Itoa
	row := []string{r.ID, r.Name, r.Company, cd.Owner.Name, string(r.Stage), "", r.Currency,
		string(r.CloseWindow), "", "0", "0", "", "", "",
		num(cd.Health.Steps), num(cd.Health.Dated), num(cd.Health.OnTime), num(cd.Health.Slipped),
		num(cd.Health.Unconfirmed), num(cd.Health.Overdue), "", "", strconv.FormatBool(cd.Quiet), string(cd.Engagement)}
	if r.Value != nil {
		row[5] = strconv.FormatFloat(*r.Value, 'f', -1, 64)
	}
	if f := r.Forecast; f != nil {
		row[8], row[9], row[10] = f.CloseBy, num(f.Moves), num(f.Slips)
	}
	if n := cd.NextStep; n != nil {
		row[11] = n.Title
		if n.Due != nil {
			row[12] = n.Due.String()
		}
		if n.Commitment != nil {
			row[13] = string(n.Commitment.State)
		}
	}
	if cd.Health.Score != nil {
		row[20] = num(*cd.Health.Score)
	}
	if r.LastCustomerActivityAt != nil {
		row[21] = r.LastCustomerActivityAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	for i := range row {
		row[i] = csvCell(row[i])
	}
	return row
}

// csvCell keeps a spreadsheet from reading a cell as a formula: text that
// begins with =, +, -, @, a tab or a carriage return gets a leading
// apostrophe, which spreadsheets show as text and do not evaluate.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// withHealth adds a room's plan health to what its reader sees of it.
func withHealth(v any, h room.Health) any {
	switch r := v.(type) {
	case *room.Room:
		return struct {
			*room.Room
			PlanHealth room.Health `json:"plan_health"`
		}{r, h}
	case room.CustomerRoom:
		return struct {
			room.CustomerRoom
			PlanHealth room.Health `json:"plan_health"`
		}{r, h}
	}
	return v
}
