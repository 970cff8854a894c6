package room

import (
	"context"
	"strings"

	"dealroom"
	"dealroom/task"
)

// Template is a standard action plan that a new room starts from.
type Template struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Tasks       []task.Draft `json:"tasks"`
}

// Templates are the built-in plans. A room can also be started from another
// room the actor can see (a worked example): its template id is the room id.
var Templates = []Template{
	{
		ID:   "tpl_standard",
		Name: "Standard mutual action plan",
		Description: "The customer's journey stage by stage: needs, solution, trust, signing, " +
			"implementation, and the relationship after.",
		Tasks: []task.Draft{
			{Title: "Discovery call: confirm needs, goals and decision process", Visibility: dealroom.Shared},
			{Title: "First-meeting questions", Visibility: dealroom.Internal, Description: "" +
				"- What problem must be solved, and by when?\n" +
				"- Who decides, who signs, who else is affected?\n" +
				"- What happens if nothing changes?\n" +
				"- How will you judge the options you are looking at?\n" +
				"- What budget and buying process apply?"},
			{Title: "Agree on success criteria", Visibility: dealroom.Shared},
			{Title: "Solution walkthrough with the customer's team", Visibility: dealroom.Shared},
			{Title: "Security and legal review", Visibility: dealroom.Shared},
			{Title: "References and proof of value", Visibility: dealroom.Shared},
			{Title: "Proposal and commercial terms", Visibility: dealroom.Shared},
			{Title: "Contract signature", Visibility: dealroom.Shared},
			{Title: "Implementation kick-off", Visibility: dealroom.Shared},
			{Title: "Follow-up call (every two weeks)", Visibility: dealroom.Internal},
		},
	},
	{
		ID:          "tpl_renewal",
		Name:        "Renewal",
		Description: "Review the value delivered and renew on time.",
		Tasks: []task.Draft{
			{Title: "Review usage and outcomes with the customer", Visibility: dealroom.Shared},
			{Title: "Collect open issues and complaints", Visibility: dealroom.Shared},
			{Title: "Renewal proposal", Visibility: dealroom.Shared},
			{Title: "Renewal signature", Visibility: dealroom.Shared},
		},
	},
}

// templateTasks returns the drafts of the action plan to start a room
// from: a built-in template, or the tasks of a room the actor can see.
func (s *Service) templateTasks(ctx context.Context, a dealroom.Actor, id string) ([]task.Draft, error) {
	if id == "" {
		return nil, nil
	}
	for _, t := range Templates {
		if t.ID == id {
			return t.Tasks, nil
		}
	}
	if !strings.HasPrefix(id, "r_") {
		return nil, dealroom.Invalid("template", "template %q does not exist", dealroom.Clip(id))
	}
	_, p, err := s.visibleRoom(ctx, a, id)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return nil, dealroom.Invalid("template", "template %q does not exist", dealroom.Clip(id))
	} else if err != nil {
		return nil, err
	}
	tasks, err := s.Store.Tasks(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []task.Draft
	for _, t := range tasks {
		if p.Sees(t.Visibility) {
			// A worked example passes on the plan, not its people or dates.
			out = append(out, task.Draft{Title: t.Title, Description: t.Description, Visibility: t.Visibility})
		}
	}
	return out, nil
}
